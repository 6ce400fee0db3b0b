"""What the processes tell the operators' other tools: metrics, notifications, structured logs.

Nothing here is on the path of a message: the engine and the relay agent keep plain
counters, and these modules read them when asked (a scrape) or act on their own
thread (a notification), so a slow collector or a dead webhook costs no send.
"""
