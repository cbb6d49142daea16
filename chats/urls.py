from django.urls import re_path
from rest_framework.routers import SimpleRouter

from chats import views

# "/?": the contract's paths work with and without a trailing slash.
router = SimpleRouter()
router.trailing_slash = "/?"
router.register(r"chats", views.ChatViewSet, basename="chat")
router.register(r"chats/(?P<chat_pk>[0-9]+)/messages", views.MessageViewSet, basename="chat-message")

urlpatterns = [
    re_path(r"^media/?$", views.MediaFeedView.as_view(), name="media-feed"),
    *router.urls,
    re_path(r"^search/messages/?$", views.MessageSearchView.as_view(), name="message-search"),
    re_path(r"^mentions/?$", views.MentionListView.as_view(), name="mentions"),
]
