"""Texting (docs/sms.md): patrons text a library's number; the text becomes a chat routed like any other.

- `numbers`: which consortium and library a number is, keywords, and the phone number shown masked;
- `models`: the patron's phone (`SmsPatron`, with the opt-out), each text in (`InboundText`) and out
  (`OutboundText`), and the link of a chat to its phone (`SmsChat`);
- `signature`: Twilio's request signature;
- `inbound`: what a text does (keywords, a new chat or a message in the open one, the unstaffed reply);
- `outbound`: the texts to send, recorded in the transaction that causes them, sent after commit;
- `provider`: Twilio's Messages resource over HTTP; `tasks`: the Celery task that sends, with retries;
- `language`: is this text Spanish?
"""
