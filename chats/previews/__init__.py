"""Link previews: the first http(s) URL of a message, its page fetched after the commit.

`fetch` reaches the page without ever connecting to an address the server's own network holds
(SSRF), `page` reads its Open Graph data, `jobs` runs the fetch in a small pool after the commit,
keeps one cached answer per URL and stores it on the message (services.message_link_preview_set).
"""
