from django.urls import re_path

from media import views

urlpatterns = [
    re_path(r"^attachments/?$", views.AttachmentUploadView.as_view(), name="attachment-upload"),
    re_path(r"^attachments/(?P<pk>[0-9]+)/file/?$", views.AttachmentFileView.as_view(), name="attachment-file"),
]
