"""GET /api/search/messages: any substring of 3+ characters of the caller's messages, in any script,
case and accents folded, over text and file names; newest first, keyset pages by `before`."""

import random

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from chats import search, services
from chats.models import Chat
from media import services as media_services
from tests.chats.test_query_budgets import queries_for
from tests.factories import UserFactory, group_with, message_in
from tests.media import images

# Authentication; the caller's chat ids (or the membership of chat_id); which of them the index lags
# behind (none here: the background indexer caught up); on MariaDB the postings counts of the query's
# trigrams and the newest indexed id (the first window of ids); the matching ids (one window here);
# their rows with senders and attachments; which senders share a chat with the caller (presence).
SEARCH_BUDGET = 8


def indexed_document(message_id: int) -> str | None:
    """What the index holds for a message (None: nothing)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"SELECT body FROM {search.FTS_TABLE} WHERE rowid = %s", [message_id])
        else:
            cursor.execute(f"SELECT body FROM {search.TEXT_TABLE} WHERE message_id = %s", [message_id])
        row = cursor.fetchone()
    return row[0] if row else None


def assert_counts_match_postings() -> None:
    """MariaDB: the postings counts the search picks the rarest trigrams by are the postings'."""
    if connection.vendor == "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT trigram, n FROM {search.COUNT_TABLE} WHERE n <> 0")
        counts = dict(cursor.fetchall())
        cursor.execute(f"SELECT trigram, COUNT(*) FROM {search.TRIGRAM_TABLE} GROUP BY trigram")
        assert counts == dict(cursor.fetchall())


def say(chat: Chat, sender, content: str = "", **kwargs):
    return services.message_create(chat_id=chat.pk, sender=sender, content=content, **kwargs).message


def found(client, q: str, **params) -> list[int]:
    r = client.get("/api/search/messages", {"q": q, **params})
    assert r.status_code == 200, r.content
    return [m["id"] for m in r.json()["results"]]


def test_a_latin_substring_in_the_middle_of_a_word_matches(api_client, chat, user):
    # given
    message = say(chat, user, "Internationalization is hard")
    say(chat, user, "something else")
    # when / then
    assert found(api_client, "nation") == [message.pk]


def test_cyrillic_matches_in_any_case(api_client, chat, user, other_user):
    # given
    message = say(chat, other_user, "Привет, мир! Как дела?")
    # when / then
    assert found(api_client, "ривет") == [message.pk]
    assert found(api_client, "МИР!") == [message.pk]


def test_a_cjk_substring_matches(api_client, chat, user):
    # given
    message = say(chat, user, "東京タワーに行きました")
    say(chat, user, "京都に行きました")
    # when / then
    assert found(api_client, "京タワ") == [message.pk]
    assert found(api_client, "行きまし") == [message.pk + 1, message.pk]


def test_accents_are_folded_in_the_text_and_in_the_query(api_client, chat, user):
    # given
    accented = say(chat, user, "Un café au lait")
    plain = say(chat, user, "cafe noir")
    # when / then
    assert found(api_client, "cafe") == [plain.pk, accented.pk]
    assert found(api_client, "CAFÉ") == [plain.pk, accented.pk]


def test_case_does_not_matter(api_client, chat, user):
    # given
    message = say(chat, user, "Hello World")
    # when / then
    assert found(api_client, "WORLD") == [message.pk]
    assert found(api_client, "hello w") == [message.pk]


def test_a_file_name_matches(api_client, chat, user):
    # given
    upload = SimpleUploadedFile("Quarterly-Report.png", images.png())
    attachment = media_services.attachment_create(uploader=user, file=upload)
    message = say(chat, user, "", attachment_id=attachment.pk)
    say(chat, user, "a report-less text")
    # when
    r = api_client.get("/api/search/messages", {"q": "ly-report"})
    # then
    assert r.status_code == 200, r.content
    assert [m["id"] for m in r.json()["results"]] == [message.pk]
    assert r.json()["results"][0]["attachment"]["id"] == attachment.pk


def test_a_match_never_spans_the_text_and_the_file_name(api_client, chat, user):
    # given: text "abc", file "def.png": "c d" and "cdef" are in neither
    attachment = media_services.attachment_create(uploader=user, file=SimpleUploadedFile("def.png", images.png()))
    say(chat, user, "abc", attachment_id=attachment.pk)
    # when / then
    assert found(api_client, "c d") == []
    assert found(api_client, "cdef") == []


def test_other_peoples_chats_never_match(api_client, make_client, chat, user, other_user):
    # given: a chat the caller is not in
    third = UserFactory.create()
    theirs = group_with(other_user, third, owner=other_user)
    say(theirs, other_user, "the secret plan")
    mine = say(chat, other_user, "no secrets here")
    # when / then
    assert found(api_client, "secret") == [mine.pk]
    assert len(found(make_client(other_user), "secret")) == 2


def test_a_deleted_message_never_matches(api_client, chat, user):
    # given
    message = say(chat, user, "forget this sentence")
    # when
    services.message_delete(chat_id=chat.pk, message_id=message.pk, actor=user)
    # then
    assert found(api_client, "forget") == []


def test_an_edited_message_matches_its_new_text_only(api_client, chat, user):
    # given
    message = say(chat, user, "meeting on monday")
    # when
    services.message_edit(chat_id=chat.pk, message_id=message.pk, actor=user, content="meeting on friday")
    # then
    assert found(api_client, "friday") == [message.pk]
    assert found(api_client, "monday") == []
    assert found(api_client, "meeting") == [message.pk]


def test_chat_id_keeps_to_that_chat(api_client, chat, user, other_user):
    # given
    elsewhere = group_with(user, other_user, owner=user, title="Elsewhere")
    here = say(chat, user, "budget for 2027")
    there = say(elsewhere, user, "budget again")
    # when / then
    assert found(api_client, "budget") == [there.pk, here.pk]
    assert found(api_client, "budget", chat_id=chat.pk) == [here.pk]


def test_chat_id_of_a_chat_the_caller_is_not_in_is_404(api_client, other_user):
    # given
    theirs = group_with(other_user, UserFactory.create(), owner=other_user)
    say(theirs, other_user, "budget")
    # when
    r = api_client.get("/api/search/messages", {"q": "budget", "chat_id": theirs.pk})
    # then
    assert r.status_code == 404, r.content


def test_pages_go_back_with_before(api_client, chat, user):
    # given
    ids = [say(chat, user, f"report number {n}").pk for n in range(5)]
    say(chat, user, "nothing to see")
    # when
    first = api_client.get("/api/search/messages", {"q": "report", "limit": 2}).json()
    second = api_client.get("/api/search/messages", {"q": "report", "limit": 2, "before": ids[3]}).json()
    last = api_client.get("/api/search/messages", {"q": "report", "limit": 2, "before": ids[1]}).json()
    # then: newest first
    assert [m["id"] for m in first["results"]] == [ids[4], ids[3]]
    assert first["has_more"] is True
    assert [m["id"] for m in second["results"]] == [ids[2], ids[1]]
    assert second["has_more"] is True
    assert [m["id"] for m in last["results"]] == [ids[0]]
    assert last["has_more"] is False


def test_results_are_rendered_as_history_renders_them(api_client, chat, user, other_user):
    # given
    say(chat, other_user, "render me the same")
    # when
    hit = api_client.get("/api/search/messages", {"q": "render"}).json()["results"]
    history = api_client.get(f"/api/chats/{chat.pk}/messages").json()["results"]
    # then
    assert hit == history


@pytest.mark.parametrize("q", ["ab", "  ab  ", "", "é\u0301\u0301"], ids=["two", "two-trimmed", "empty", "one-folded"])
def test_a_query_shorter_than_3_characters_is_400(api_client, chat, user, q):
    # given
    say(chat, user, "ab ab ab")
    # when
    r = api_client.get("/api/search/messages", {"q": q})
    # then
    assert r.status_code == 400, r.content
    assert "q" in r.json()


def test_a_missing_query_is_400(api_client):
    r = api_client.get("/api/search/messages")
    assert r.status_code == 400, r.content
    assert "q" in r.json()


def test_like_wildcards_and_quotes_are_plain_characters(api_client, chat, user):
    # given
    percent = say(chat, user, 'he said "100% sure"')
    say(chat, user, "1000 sure, 10_0 too")
    # when / then
    assert found(api_client, "100%") == [percent.pk]
    assert found(api_client, '"100') == [percent.pk]
    assert found(api_client, "0_0") == [percent.pk + 1]
    assert found(api_client, "1_0") == []


def test_unauthenticated_is_401(client, db):
    r = client.get("/api/search/messages", {"q": "hello"})
    assert r.status_code == 401, r.content


def test_messages_written_around_the_services_are_found_and_a_rebuild_keeps_them_once(api_client, chat, user):
    # given: a row written without the services (no outbox, no notice): only its chat's version moved
    old = message_in(chat, user, "an old message")
    # when / then: the search indexes what its chats hold above their marks
    assert found(api_client, "old mess") == [old.pk]
    search.rebuild()
    assert found(api_client, "old mess") == [old.pk]


def test_a_send_writes_no_index_and_the_next_search_finds_it(api_client, chat, user):
    # given
    message = say(chat, user, "straight from the composer")
    # then: the send's transaction left the index alone (the background indexer is off in tests)
    assert indexed_document(message.pk) is None
    # when / then
    assert found(api_client, "composer") == [message.pk]
    assert indexed_document(message.pk) == "straight from the composer"
    assert search.catch_up([chat.pk]) == 0  # the chat's mark moved past it


def test_an_indexed_message_edited_then_deleted_is_indexed_again_each_time(api_client, chat, user):
    # given: indexed as first written
    message = say(chat, user, "meeting on monday")
    assert found(api_client, "monday") == [message.pk]
    # when
    services.message_edit(chat_id=chat.pk, message_id=message.pk, actor=user, content="meeting on friday")
    # then
    assert found(api_client, "monday") == []
    assert found(api_client, "on friday") == [message.pk]
    # when
    services.message_delete(chat_id=chat.pk, message_id=message.pk, actor=user)
    # then: nothing of it left in the index
    assert found(api_client, "meeting") == []
    assert indexed_document(message.pk) is None
    assert_counts_match_postings()


def test_a_reaction_leaves_the_document_as_it_was(api_client, chat, user):
    # given
    message = say(chat, user, "lunch at noon")
    assert found(api_client, "noon") == [message.pk]
    # when: a change that takes a version but not the text
    services.message_react(chat_id=chat.pk, message_id=message.pk, actor=user, emoji="\U0001f44d", add=True)
    # then
    assert search.catch_up([chat.pk]) == 1
    assert found(api_client, "noon") == [message.pk]
    assert indexed_document(message.pk) == "lunch at noon"
    assert_counts_match_postings()


def test_a_long_query_needs_its_characters_in_order_not_only_its_trigrams(api_client, chat, user):
    # given: every trigram of "hello world" is in the first, but not the phrase
    say(chat, user, "hello worl, ello world")
    wanted = say(chat, user, "hello world")
    # when / then
    assert found(api_client, "hello world") == [wanted.pk]


@pytest.mark.parametrize("chat_filter", [False, True], ids=["all-chats", "one-chat"])
def test_a_page_costs_the_same_whatever_the_matches_and_chats(
    api_client, chat, user, other_user, django_assert_max_num_queries, chat_filter
):
    # given
    params = {"q": "hello", "limit": 100, **({"chat_id": chat.pk} if chat_filter else {})}
    say(chat, other_user, "hello there")
    search.catch_up(Chat.objects.values_list("id", flat=True))  # as the background indexer does
    few, _ = queries_for(api_client, "/api/search/messages", params)
    senders = [UserFactory.create() for _ in range(10)]
    for n in range(10):
        group = group_with(user, senders[n], owner=user, title=f"g{n}")
        say(group, senders[n], "hello from elsewhere")
        say(chat, user, f"hello number {n}")
    search.catch_up(Chat.objects.values_list("id", flat=True))
    # when
    with django_assert_max_num_queries(SEARCH_BUDGET):
        r = api_client.get("/api/search/messages", params)
    many, _ = queries_for(api_client, "/api/search/messages", params)
    # then
    assert r.status_code == 200, r.content
    assert len(r.json()["results"]) == (11 if chat_filter else 21)
    assert many == few


def test_fold():
    # Full-width Latin (U+FF21..) becomes ASCII.
    assert search.fold("  Straße\tCAFÉ  Ёж \uff21\uff22\uff23 ") == "strasse cafe \u0435ж abc"
    assert search.fold("バス") == "バス"
    assert search.fold("한국어") == "한국어"


def test_messages_of_a_deleted_account_never_match(api_client, chat, user, other_user):
    # given: the account's messages go with it (rows deleted, not blanked)
    say(chat, other_user, "gone with the account")
    mine = say(chat, user, "still gone here")
    # when
    other_user.delete()
    # then
    r = api_client.get("/api/search/messages", {"q": "gone"})
    assert r.status_code == 200, r.content
    assert [m["id"] for m in r.json()["results"]] == [mine.pk]


@pytest.mark.django_db(transaction=True)
def test_the_background_indexer_indexes_a_send_after_its_commit(settings, api_client, chat, user):
    # given: the indexer on, as in production
    settings.SEARCH_INDEX_IN_BACKGROUND = True
    # when: a committed send (no test transaction around it: the outbox notices after the commit)
    message = say(chat, user, "indexed by the thread")
    # then: the thread caught the chat up, so the search finds nothing to catch up itself
    assert search.indexer.wait_idle(timeout=30)
    assert indexed_document(message.pk) == "indexed by the thread"
    assert search.catch_up([chat.pk]) == 0
    assert found(api_client, "by the thr") == [message.pk]


def test_a_common_trigram_is_read_in_windows_until_the_page_is_full(api_client, chat, user, monkeypatch):
    # given: the first window of ids holds about one posting of "abc": later windows must fill the page
    monkeypatch.setattr(search, "WINDOW_POSTINGS", 1)
    older = [say(chat, user, f"abc {n}").pk for n in range(6)]
    for n in range(20):
        say(chat, user, f"filler {n}")
    newest = say(chat, user, "xabcx").pk
    # when / then: every match, newest first, with keyset pages across windows
    assert found(api_client, "abc") == [newest, *reversed(older)]
    assert found(api_client, "abc", limit=3) == [newest, older[5], older[4]]
    assert found(api_client, "abc", before=older[4]) == list(reversed(older[:4]))
    assert found(api_client, "abc 3") == [older[3]]


def index_rows() -> tuple[set[tuple[int, int, int]], dict[int, int], dict[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT trigram, chat_id, message_id FROM {search.TRIGRAM_TABLE}")
        postings = set(cursor.fetchall())
        cursor.execute(f"SELECT trigram, n FROM {search.COUNT_TABLE} WHERE n <> 0")
        counts = dict(cursor.fetchall())
        cursor.execute(f"SELECT message_id, body FROM {search.TEXT_TABLE}")
        return postings, counts, dict(cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "mysql", reason="MariaDB: the server makes a rebuild's postings")
@pytest.mark.django_db(transaction=True)
def test_a_rebuild_on_the_server_makes_the_postings_the_indexer_makes(api_client, chat, user):
    # given: messages in several scripts, one with a file name, indexed in Python
    say(chat, user, "Straße café 東京タワー привет")
    say(chat, user, "x")
    attachment = media_services.attachment_create(
        uploader=user, file=SimpleUploadedFile("Отчёт 東京.png", images.png())
    )
    say(chat, user, "see the file", attachment_id=attachment.pk)
    # (the index tables are not the test database's models: an earlier test's committed rows stay)
    search.rebuild()
    assert found(api_client, "京タワ") != []
    before = index_rows()
    # when: made again from nothing, the postings by the server's SQL (migration 0006's way)
    search.rebuild(rekey=True)
    # then
    assert index_rows() == before
    assert found(api_client, "京タワ") != []


@pytest.mark.parametrize("plan", ["intersected", "intersected-in-windows", "looked-up"])
def test_a_rare_phrase_of_common_trigrams_matches_its_characters_in_order(
    api_client, chat, user, other_user, monkeypatch, plan
):
    # given: every trigram of "meeting tomorrow" is common (each word alone, reversed, or apart),
    # the phrase itself is in two messages only, one of them in a chat of someone else's
    # MariaDB: the trigrams' postings intersected, also across windows
    # of message ids about a posting of the rarest wide; or a lookup of the others a posting of it
    if plan == "intersected-in-windows":
        monkeypatch.setattr(search, "WINDOW_POSTINGS", 0)  # the first window one message id wide
    if plan == "looked-up":
        monkeypatch.setattr(search, "RANGE_RATIO", 0)
    theirs = group_with(other_user, UserFactory.create(), owner=other_user, title="theirs")
    say(chat, user, "g tomorrow g to")  # "g t" more common than the rest: intersected, not looked up
    say(theirs, other_user, "meeting tomorrow")
    common = [say(chat, user, text).pk for text in ["meeting", "tomorrow", "tomorrow meeting", "meeting, tomorrow"]]
    for n in range(10):
        say(chat, user, f"meetingtomorrow {n} meeting g tomorrow")  # every trigram, never the phrase
    older = say(chat, user, "the Meeting  Tomorrow at ten").pk
    deleted = say(chat, user, "meeting tomorrow, deleted")
    services.message_delete(chat_id=chat.pk, message_id=deleted.pk, actor=user)
    newer = say(chat, user, "see you at the meeting tomorrow").pk
    # when / then: only the phrase, newest first, folded; order of its characters matters
    assert found(api_client, "meeting tomorrow") == [newer, older]
    assert found(api_client, "ting tomor") == [newer, older]
    assert found(api_client, "meeting tomorrow", before=newer) == [older]
    assert found(api_client, "meeting tomorrow", limit=1) == [newer]
    assert found(api_client, "tomorrow meeting") == [common[2]]
    assert found(api_client, "worromot gniteem") == []
    assert found(api_client, "meeting tomorrow", chat_id=chat.pk) == [newer, older]
    assert found(api_client, "xq meeting") == []  # a trigram no message has


def pages_of(client, q: str, limit: int) -> list[list[int]]:
    """Every page of a search, each asked for with `before` the last id of the one above."""
    pages: list[list[int]] = []
    params: dict = {"q": q, "limit": limit}
    while True:
        r = client.get("/api/search/messages", params)
        assert r.status_code == 200, r.content
        page = [m["id"] for m in r.json()["results"]]
        pages.append(page)
        if not r.json()["has_more"]:
            return pages
        params["before"] = page[-1]


@pytest.mark.parametrize("windows", ["one-window", "many-windows"])
def test_a_phrase_of_common_words_finds_exactly_its_messages_in_full_pages(
    api_client, chat, user, other_user, monkeypatch, windows
):
    # given: a vocabulary of five words, so every trigram of a phrase is common and only the
    # combination is rare; some messages deleted, the same texts in a chat of someone else's
    if windows == "many-windows":
        monkeypatch.setattr(search, "WINDOW_POSTINGS", 0)  # MariaDB: the first window one message id wide
    rng = random.Random(13)
    vocabulary = ["tea", "team", "meat", "steam", "ate"]
    mine = group_with(user, other_user, owner=user, title="mine")
    theirs = group_with(other_user, UserFactory.create(), owner=other_user, title="theirs")
    texts = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(2, 6))) for _ in range(160)]
    messages = [message_in(rng.choice([chat, mine]), user, text) for text in texts]
    for text in texts[:40]:
        message_in(theirs, other_user, text)
    deleted = {m.pk for m in messages[::9]}
    for message in messages[::9]:
        services.message_delete(chat_id=message.chat_id, message_id=message.pk, actor=user)
    for q in ["meat steam", "m tea", "ate ate", "eam meat te", "steam steam", "a team"]:
        expected = [m.pk for m in reversed(messages) if q in m.content and m.pk not in deleted]
        # when
        pages = pages_of(api_client, q, limit=7)
        # then: every hit, newest first, once; every page but the last full
        assert [i for page in pages for i in page] == expected, q
        assert all(len(page) == 7 for page in pages[:-1]), q


def test_the_plan_intersects_one_trigram_a_word():
    # given: the counts of "coffee contract"'s trigrams as a small vocabulary makes them ("e c"
    # across the words the rarest; each word's own trigrams about as common as one another)
    def key(trigram: str) -> int:
        (packed,) = search.trigram_keys(trigram)
        return packed

    counts = {key(t): 7000 for t in ["cof", "off", "ffe", "fee", "con", "ont", "ntr", "rac", "act"]}
    counts |= {key("e c"): 6000, key("ee "): 9000, key(" co"): 12000, key("tra"): 19000}
    counts[key("con")] = 6500
    # when / then: "e c" touches both words, so nothing else is read: the document decides
    assert search._plan("coffee contract", counts) == ([key("e c")], [])
    # a trigram of each word: the rarest of the other word is intersected (at most twice as common)
    # or looked up (more common)
    assert search._plan("coffee", counts) == ([key("cof")], [])
    assert search._plan("fee con", {**counts, key("e c"): 50000}) == ([key("con"), key("fee")], [])
    more_common = {**counts, key("e c"): 50000, key("fee"): 20000, key("ee "): 30000}
    assert search._plan("fee con", more_common) == ([key("con")], [key("fee")])
