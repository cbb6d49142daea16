from django.urls import re_path

from accounts import views

urlpatterns = [
    re_path(r"^auth/register/?$", views.RegisterView.as_view(), name="auth-register"),
    re_path(r"^auth/login/?$", views.LoginView.as_view(), name="auth-login"),
    re_path(r"^auth/refresh/?$", views.RefreshView.as_view(), name="auth-refresh"),
    re_path(r"^auth/logout/?$", views.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^auth/password/?$", views.PasswordChangeView.as_view(), name="auth-password"),
    re_path(r"^auth/logout-all/?$", views.LogoutAllView.as_view(), name="auth-logout-all"),
    re_path(r"^auth/me/?$", views.MeView.as_view(), name="auth-me"),
    re_path(r"^auth/email/confirm/?$", views.EmailConfirmView.as_view(), name="auth-email-confirm"),
    re_path(r"^users/search/?$", views.UserSearchView.as_view(), name="user-search"),
    re_path(r"^users/(?P<pk>[0-9]+)/?$", views.UserDetailView.as_view(), name="user-detail"),
]
