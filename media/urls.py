from django.urls import re_path

from media import views

urlpatterns = [
    re_path(r"^attachments/?$", views.AttachmentUploadView.as_view(), name="attachment-upload"),
    re_path(r"^attachments/(?P<pk>[0-9]+)/file/?$", views.AttachmentFileView.as_view(), name="attachment-file"),
    re_path(r"^auth/me/avatar/?$", views.AvatarView.as_view(), name="auth-me-avatar"),
    # accounts.serializers.AVATAR_URL_PREFIX names this path.
    re_path(r"^avatars/(?P<sha256>[0-9a-f]{64})/?$", views.AvatarFileView.as_view(), name="avatar-file"),
]
