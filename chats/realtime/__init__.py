"""The real-time core: where an event is born, rendered, published and delivered (docs/realtime.md).

services (outbox.atomic, outbox.record(events.*))  ->  commit  ->  render  ->  envelopes.publish
->  every process's hub: router -> adapter.deliver -> the local sockets (consumer)
"""
