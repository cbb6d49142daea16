def test_member_posts_a_message_and_reads_it_back(api_client, chat):
    # when
    r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "héllo 👋"}, format="json")
    # then
    assert r.status_code == 201, r.content
    history = api_client.get(f"/api/chats/{chat.id}/messages")
    assert history.status_code == 200, history.content
    assert [m["content"] for m in history.json()["results"]] == ["héllo 👋"]
