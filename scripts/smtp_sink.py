"""An aiosmtpd handler for the e-mail tests: stores every accepted message in a directory.

Started by scripts/with-smtp as `python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.Sink MAILDIR`.

Test hooks (by recipient address):
- a recipient whose local part starts with `refuse` is refused with 550 (a permanent error);
- a message to a recipient whose local part starts with `vanish` has its connection dropped in the middle of
  DATA the first time its Message-ID is seen (the server "vanishes" mid-send), and is accepted the next time.
"""

import itertools
import os
import time


class Sink:
    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("smtp_sink.Sink takes one argument: the directory to write messages to")
        return cls(args[0])

    def __init__(self, maildir):
        self.maildir = maildir
        self.counter = itertools.count()
        self.vanished = set()
        os.makedirs(maildir, exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("refuse"):
            return "550 5.1.1 <%s>: recipient address rejected: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.content.decode("utf8", errors="replace")
        message_id = ""
        for line in content.splitlines():
            if line.lower().startswith("message-id:"):
                message_id = line.split(":", 1)[1].strip()
                break
        if any(r.split("@")[0].startswith("vanish") for r in envelope.rcpt_tos):
            if message_id not in self.vanished:
                self.vanished.add(message_id)
                server.transport.abort()
                return "421 4.3.0 gone"
        name = "%d-%06d.eml" % (time.time_ns(), next(self.counter))
        tmp = os.path.join(self.maildir, "." + name)
        with open(tmp, "w") as f:
            f.write("X-Envelope-From: %s\n" % envelope.mail_from)
            f.write("X-Envelope-To: %s\n" % ", ".join(envelope.rcpt_tos))
            f.write(content)
        os.rename(tmp, os.path.join(self.maildir, name))
        return "250 Message accepted for delivery"
