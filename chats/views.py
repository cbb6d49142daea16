"""REST endpoints: validate the input → call a service or selector → render the output."""

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from accounts.auth import request_user
from accounts.models import User
from accounts.throttles import check_rate
from chats import selectors, services
from chats.models import Chat, Message
from chats.serializers import (
    MAX_ID,
    ChatCreateSerializer,
    ChatSerializer,
    ChatUpdateSerializer,
    MediaFeedQuerySerializer,
    MediaItemSerializer,
    MediaPageSerializer,
    MediaQuerySerializer,
    MemberAddSerializer,
    MemberRoleSerializer,
    MentionPageQuerySerializer,
    MessageCreateSerializer,
    MessageEditSerializer,
    MessagePageQuerySerializer,
    MessagePageSerializer,
    MessageSearchQuerySerializer,
    MessageSerializer,
    PinSerializer,
    ReadResultSerializer,
    ReadSerializer,
    chat_data,
    media_item_data,
    message_data,
    viewer_first,
)
from messenger.pagination import ChatCursorPagination, NewestFirstCursorPagination, PinCursorPagination
from messenger.schema import ContractAutoSchema


def render_chat(request: Request, chat_id: int, *, status_code: int = status.HTTP_200_OK) -> Response:
    chat = selectors.chat_detail(chat_id=chat_id, user=request_user(request))
    if chat is None:
        raise Http404
    context = {"user": request_user(request), **selectors.presence_context(selectors.users_in_chats([chat]))}
    return Response(ChatSerializer(chat, context=context).data, status=status_code)


def for_viewer(viewer: User, rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rendered Messages as the viewer sees them (serializers.viewer_first): at most one query."""
    hidden = selectors.reactions_beyond_shown(viewer.pk, rendered)
    return [viewer_first(m, viewer.pk, hidden.get(m["id"], frozenset())) for m in rendered]


def messages_for_viewer(viewer: User, messages: list[Message]) -> list[dict[str, Any]]:
    """A page of Messages (history, search, mentions, pins) as the viewer sees them: presence hidden
    for senders who share no chat with the viewer any more, the viewer first among the reactors."""
    presence = selectors.presence_context(selectors.users_shown(messages), viewer=viewer)
    online_ids, visible_ids = presence["online_ids"], presence["presence_visible_ids"]
    return for_viewer(viewer, [message_data(m, online_ids=online_ids, visible_ids=visible_ids) for m in messages])


def message_response(
    request: Request, result: services.MessageResult, *, status_code: int = status.HTTP_200_OK
) -> Response:
    """The Message as its event showed it to every member (rendered once, after the commit), with
    the caller first among the reactors of their emoji."""
    data, _ = result.payload()
    return Response(for_viewer(request_user(request), [data])[0], status=status_code)


class PathIdsInRange:
    """Ids in the path past the largest a row can have name nothing: 404, before any query
    (SQLite cannot bind such a number and would fail with an overflow)."""

    kwargs: dict[str, Any]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if any(value.isascii() and value.isdigit() and int(value) > MAX_ID for value in self.kwargs.values()):
            raise NotFound()


MEDIA_KIND_PARAMETER = OpenApiParameter(
    "kind", str, enum=["image", "file"], description="Addition (contract v1.1): `image` (the default) or `file`"
)


@extend_schema(tags=["chats"])
class ChatViewSet(PathIdsInRange, viewsets.GenericViewSet[Chat]):
    serializer_class = ChatSerializer
    pagination_class = ChatCursorPagination
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> Any:
        return selectors.chats_for(request_user(self.request))

    def list(self, request: Request) -> Response:
        viewer = request_user(request)
        page = selectors.attach_members(self.paginate_queryset(self.get_queryset()) or [])
        online_ids = selectors.presence_context(selectors.users_in_chats(page))["online_ids"]
        # chat_data is ChatSerializer's output; a plain list, not ChatSerializer(many=True).data, whose
        # ListSerializer and its child refer to each other and keep the page for the cyclic collector.
        return self.get_paginated_response([chat_data(chat, viewer=viewer, online_ids=online_ids) for chat in page])

    @extend_schema(
        request=ChatCreateSerializer,
        responses={
            201: ChatSerializer,
            200: ChatSerializer,
            429: OpenApiResponse(
                description="Groups created over `THROTTLE_GROUP_CREATE` per user: try again after Retry-After seconds"
            ),
        },
        description=(
            "Create a group, or a direct chat (200 with the existing one when the pair has one). "
            "Creating groups is rate-limited per user (`THROTTLE_GROUP_CREATE`); direct chats are not."
        ),
    )
    def create(self, request: Request) -> Response:
        data = ChatCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["is_group"]:
            check_rate(request, "group_create")
        chat, created = services.chat_create(creator=request_user(request), **data.validated_data)
        return render_chat(request, chat.pk, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def retrieve(self, request: Request, pk: str) -> Response:
        return render_chat(request, int(pk))

    @extend_schema(
        request=ChatUpdateSerializer,
        responses={
            200: ChatSerializer,
            429: OpenApiResponse(
                description="Renames over `THROTTLE_RENAME` per user: try again after Retry-After seconds"
            ),
        },
        description="Rename a group (owner/admin; rate-limited per user, `THROTTLE_RENAME`), and/or mute or unmute "
        "the chat for the caller (`muted`, any member).",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        data = ChatUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        viewer = request_user(request)
        if "title" in data.validated_data:
            check_rate(request, "rename")
            services.chat_update(chat_id=int(pk), actor=viewer, title=data.validated_data["title"])
        if "muted" in data.validated_data:
            services.chat_mute(chat_id=int(pk), user=viewer, muted=data.validated_data["muted"])
        return render_chat(request, int(pk))

    @extend_schema(request=MemberAddSerializer, responses={201: ChatSerializer})
    @action(detail=True, methods=["post"], url_path="members")
    def add_member(self, request: Request, pk: str) -> Response:
        data = MemberAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        viewer = request_user(request)
        added = services.chat_member_add(chat_id=int(pk), actor=viewer, user_id=data.validated_data["user_id"])
        members = selectors.members_of(added.chat) if added.chat is not None else []
        mine = next((m for m in members if m.user_id == viewer.pk), None)
        if added.chat_shared is None or mine is None:
            return render_chat(request, int(pk), status_code=status.HTTP_201_CREATED)
        # The chat as the newcomer's chat.created showed it (rendered once), with the caller's own fields.
        own = {
            "my_role": mine.role,
            "unread_count": mine.unread_count,
            "last_read_id": mine.last_read_id,
            "muted": mine.muted,
        }
        return Response({**added.chat_shared, **own}, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["DELETE"],
        request=None,
        parameters=[
            OpenApiParameter(
                "heir_id",
                int,
                description=(
                    "Addition (contract v1.1): the owner leaving names the member who becomes owner "
                    "(else the longest-standing admin, else member, does). 400 when it is not another "
                    "member, or when the caller is not the owner leaving."
                ),
            )
        ],
        responses={204: None, 400: OpenApiResponse(description="Bad `heir_id`, or a direct chat")},
        description="The owner or an admin removes a member; any member removes themself (leaves).",
    )
    @extend_schema(
        methods=["PATCH"],
        request=MemberRoleSerializer,
        responses=ChatSerializer,
        description="Addition to v1: the owner makes a member an admin, or an admin a member again.",
    )
    @action(detail=True, methods=["delete", "patch"], url_path=r"members/(?P<user_id>[0-9]+)")
    def member(self, request: Request, pk: str, user_id: str) -> Response:
        if request.method == "PATCH":
            data = MemberRoleSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            services.chat_member_set_role(
                chat_id=int(pk), actor=request_user(request), user_id=int(user_id), role=data.validated_data["role"]
            )
            return render_chat(request, int(pk))
        heir = request.query_params.get("heir_id")
        if heir is not None and not (heir.isascii() and heir.isdigit() and len(heir) <= 18):
            raise serializers.ValidationError({"heir_id": ["A user id."]})
        services.chat_member_remove(
            chat_id=int(pk),
            actor=request_user(request),
            user_id=int(user_id),
            heir_id=int(heir) if heir is not None else None,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ReadSerializer, responses=ReadResultSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str) -> Response:
        data = ReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.chat_mark_read(
            chat_id=int(pk), user=request_user(request), message_id=data.validated_data["message_id"]
        )
        return Response({"last_read_id": membership.last_read_id, "unread_count": membership.unread_count})

    @extend_schema(
        parameters=[MEDIA_KIND_PARAMETER],
        responses=MediaItemSerializer(many=True),
        description="The chat's images (or, with `kind=file`, other files), newest first.",
    )
    @action(detail=True, methods=["get"])
    def media(self, request: Request, pk: str) -> Response:
        services.membership_get(chat_id=int(pk), user=request_user(request))
        query = MediaQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = NewestFirstCursorPagination()
        messages = selectors.media_page_queryset(int(pk), query.validated_data["kind"])
        page = paginator.paginate_queryset(messages, request, view=self) or []
        # Senders who left and share no chat with the caller any more: presence hidden.
        presence = selectors.presence_context([m.sender for m in page], viewer=request_user(request))
        online_ids, visible_ids = presence["online_ids"], presence["presence_visible_ids"]
        return paginator.get_paginated_response(
            [media_item_data(message, online_ids=online_ids, visible_ids=visible_ids) for message in page]
        )

    @extend_schema(
        methods=["GET"],
        request=None,
        responses=MessageSerializer(many=True),
        description="The chat's pinned messages, most recently pinned first.",
    )
    @extend_schema(
        methods=["POST"],
        request=PinSerializer,
        responses={201: MessageSerializer, 200: MessageSerializer},
        description="Pin a message of the chat (any member of a direct chat; the owner or an admin of a group): "
        "it takes the chat's next version (`message.updated`) and a `message.pinned` system message records it. "
        "A message already pinned answers 200 and changes nothing.",
    )
    @action(detail=True, methods=["get", "post"])
    def pins(self, request: Request, pk: str) -> Response:
        viewer = request_user(request)
        if request.method == "POST":
            data = PinSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            result = services.message_pin(chat_id=int(pk), actor=viewer, message_id=data.validated_data["message_id"])
            return message_response(
                request, result, status_code=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
            )
        services.membership_get(chat_id=int(pk), user=viewer)
        paginator = PinCursorPagination()
        page = paginator.paginate_queryset(selectors.pinned_messages(int(pk)), request, view=self) or []
        return paginator.get_paginated_response(messages_for_viewer(viewer, list(page)))

    @extend_schema(
        request=None,
        responses={204: None},
        description="Unpin a message (the same roles as pinning); one that is not pinned changes nothing.",
    )
    @action(detail=True, methods=["delete"], url_path=r"pins/(?P<message_id>[0-9]+)")
    def unpin(self, request: Request, pk: str, message_id: str) -> Response:
        services.message_unpin(chat_id=int(pk), actor=request_user(request), message_id=int(message_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MediaFeedView(APIView):
    """GET /api/media: the gallery of every chat the caller is in."""

    @extend_schema(
        tags=["chats"],
        parameters=[
            MEDIA_KIND_PARAMETER,
            OpenApiParameter("before", int, description="Items whose message id is below this (the next page)"),
            OpenApiParameter("limit", int, description="At most this many (1..100, default 30)"),
        ],
        responses=MediaPageSerializer,
        description=(
            "Addition (contract v1.1): the rows of `GET /api/chats/{id}/media`, with `chat_id`, across all the "
            "caller's chats, newest first. `next` is the URL of the next page (`before` the last row's "
            "`message_id`), null on the last."
        ),
    )
    def get(self, request: Request) -> Response:
        query = MediaFeedQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        viewer = request_user(request)
        page = selectors.media_feed(user=viewer, **query.validated_data)
        # Senders who left and share no chat with the caller any more: presence hidden.
        presence = selectors.presence_context([m.sender for m in page.results], viewer=viewer)
        online_ids, visible_ids = presence["online_ids"], presence["presence_visible_ids"]
        results = [media_item_data(m, online_ids=online_ids, visible_ids=visible_ids) for m in page.results]
        next_url = None
        if page.has_more:
            next_url = replace_query_param(request.build_absolute_uri(), "before", page.results[-1].pk)
        return Response({"results": results, "next": next_url})


class MessagePageSchema(ContractAutoSchema):
    """GET …/messages answers one object, `{results, has_more}`, though it is the viewset's `list`."""

    def _is_list_view(self, serializer: Any = None) -> bool:
        return False


@extend_schema(tags=["messages"])
class MessageViewSet(PathIdsInRange, mixins.ListModelMixin, viewsets.GenericViewSet[Message]):
    serializer_class = MessageSerializer
    schema = MessagePageSchema()
    pagination_class = None
    lookup_value_regex = "[0-9]+"

    def chat_id(self) -> int:
        return int(self.kwargs["chat_pk"])

    def get_queryset(self) -> Any:
        # What DRF's generic machinery may look up (OPTIONS on a PUT asks for the object): the
        # chat's messages, for a member only. The handlers below go through the services.
        return Message.objects.filter(chat_id=self.chat_id(), chat__memberships__user=request_user(self.request))

    @extend_schema(
        parameters=[
            OpenApiParameter("before", int, description="History: messages with an id below this, newest first"),
            OpenApiParameter("since", int, description="Catch-up: every message changed after this version"),
            OpenApiParameter("limit", int, description="At most this many (1..100, default 50)"),
        ],
        responses=MessagePageSerializer,
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.membership_get(chat_id=self.chat_id(), user=request_user(request))
        query = MessagePageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = selectors.message_page(chat_id=self.chat_id(), **query.validated_data)
        results = messages_for_viewer(request_user(request), page.results)
        return Response({"results": results, "has_more": page.has_more})

    @extend_schema(
        request=MessageCreateSerializer,
        responses={201: MessageSerializer, 200: MessageSerializer},
        description="A repeated client_id from the same sender in the same chat answers 200 with the first message "
        "(in another chat it is a new message).",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = MessageCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.message_create(chat_id=self.chat_id(), sender=request_user(request), **data.validated_data)
        return message_response(
            request, result, status_code=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )

    @extend_schema(request=MessageEditSerializer, responses=MessageSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = MessageEditSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.message_edit(
            chat_id=self.chat_id(),
            message_id=int(kwargs["pk"]),
            actor=request_user(request),
            content=data.validated_data["content"],
        )
        return message_response(request, result)

    @extend_schema(
        methods=["PUT"],
        request=None,
        responses=MessageSerializer,
        description="React with one emoji (URL-encoded in the path); putting it twice changes nothing. A change "
        "takes the chat's next version and is sent as `message.updated`.",
    )
    @extend_schema(
        methods=["DELETE"],
        request=None,
        responses=MessageSerializer,
        description="Take the caller's reaction back; taking back one that is not there changes nothing.",
    )
    @action(detail=True, methods=["put", "delete"], url_path=r"reactions/(?P<emoji>[^/]+)")
    def reactions(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        result = services.message_react(
            chat_id=self.chat_id(),
            message_id=int(kwargs["pk"]),
            actor=request_user(request),
            emoji=kwargs["emoji"],
            add=request.method == "PUT",
        )
        return message_response(request, result)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.message_delete(chat_id=self.chat_id(), message_id=int(kwargs["pk"]), actor=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageSearchView(APIView):
    """GET /api/search/messages: the caller's messages holding a substring, newest first."""

    # A chat_id of a chat the caller is not in: 404, as everywhere (messenger.schema).
    error_statuses = (404,)

    @extend_schema(
        tags=["messages"],
        operation_id="search_messages",
        parameters=[
            OpenApiParameter(
                "q",
                str,
                required=True,
                description="At least 3 characters (after trimming), matched anywhere in a message's text or "
                "its file's name, in any script; case and accents do not matter",
            ),
            OpenApiParameter("chat_id", int, description="Only this chat (404 when the caller is not a member)"),
            OpenApiParameter("before", int, description="Messages with an id below this (the next page)"),
            OpenApiParameter("limit", int, description="At most this many (1..100, default 50)"),
        ],
        responses=MessagePageSerializer,
        description="Messages of the caller's chats whose text or file name holds `q`, newest first; deleted "
        "messages never match. A `q` shorter than 3 characters is a 400.",
    )
    def get(self, request: Request) -> Response:
        query = MessageSearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        viewer = request_user(request)
        params = query.validated_data
        chat_id = params.get("chat_id")
        if chat_id is not None:
            services.membership_get(chat_id=chat_id, user=viewer)
        page = selectors.message_search(
            user=viewer, query=params["q"], chat_id=chat_id, before=params.get("before"), limit=params["limit"]
        )
        return Response({"results": messages_for_viewer(viewer, page.results), "has_more": page.has_more})


@extend_schema(tags=["messages"])
class MentionListView(PathIdsInRange, APIView):
    """GET /api/mentions: the messages that mention the caller, newest first, in their chats only."""

    @extend_schema(
        parameters=[
            OpenApiParameter("before", int, description="Messages with an id below this, newest first"),
            OpenApiParameter("limit", int, description="At most this many (1..100, default 50)"),
        ],
        responses=MessagePageSerializer,
    )
    def get(self, request: Request) -> Response:
        query = MentionPageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        viewer = request_user(request)
        page = selectors.mentions_page(user=viewer, **query.validated_data)
        return Response({"results": messages_for_viewer(viewer, page.results), "has_more": page.has_more})
