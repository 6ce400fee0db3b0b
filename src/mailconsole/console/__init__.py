"""The operator console: a Textual app over the store (and, optionally, an engine behind it).

One module per pane or screen. The console reads and writes only through
`mailconsole.store`; store calls run in worker threads so a slow or locked
database never freezes the keyboard.
"""
