"""The relay agent: the stop reaches into the relay's queue (mailconsole relay-agent).

Beside engine/, and like it talking to the rest only through the store. The
relay side is a small interface (interface.RelayQueue: list, hold, release,
delete, outcomes); postfix.PostfixQueue implements it with Postfix's own tools.
"""
