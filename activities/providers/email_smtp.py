"""Email over SMTP with the standard library, run in a thread so the event loop never blocks.

Each page is one multipart/alternative message (plain text and HTML). Its ``Message-ID``
is derived from the page's delivery key, so a retried send carries the same id and mail
clients and archives recognise the duplicate; acknowledge and resolve mails reply to the
trigger's id, so they thread under it.

Failures: connection faults, timeouts and 4xx replies are :class:`TransientSmtpError`
(retried); 5xx replies (unknown mailbox, relay denied, bad credentials) are
:class:`PermanentSmtpError` (not retried). See the tree in :mod:`activities.http`.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from activities.contracts import ContactKind, Page, PageAction, PageResult
from activities.http import DeliveryError, redact

VENDOR = "email"


class TransientSmtpError(DeliveryError):
    """The mail server could not be reached or asked to try again later (4xx)."""

    def __init__(self, message: str) -> None:
        """Build a retryable error."""
        super().__init__(message, type="TransientSmtpError", non_retryable=False)


class PermanentSmtpError(DeliveryError):
    """The mail server refused the message for good (5xx)."""

    def __init__(self, message: str) -> None:
        """Build a non-retryable error."""
        super().__init__(message, type="PermanentSmtpError", non_retryable=True)


def message_id(key: str, domain: str) -> str:
    """A stable ``Message-ID`` for a delivery key."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{VENDOR} answered SMTP {code}: {words}"


def classify_smtp_error(exc: OSError, secrets: tuple[str, ...] = ()) -> DeliveryError:
    """Map an ``smtplib`` or socket failure to a transient or permanent error."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # One recipient per message, so one (code, text) pair; any 5xx is final.
        replies = list(exc.recipients.values())
        code, text = replies[0] if replies else (550, b"recipient refused")
        message = redact(_reply(code, text), secrets)
        if any(500 <= c <= 599 for c, _ in replies):
            return PermanentSmtpError(message)
        return TransientSmtpError(message)
    if isinstance(exc, smtplib.SMTPResponseException):
        message = redact(_reply(exc.smtp_code, exc.smtp_error), secrets)
        if 500 <= exc.smtp_code <= 599:
            return PermanentSmtpError(message)
        return TransientSmtpError(message)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # e.g. STARTTLS configured but not offered: a settings problem, not a blip.
        return PermanentSmtpError(redact(f"{VENDOR} server refused: {exc}", secrets))
    kind = "timed out" if isinstance(exc, TimeoutError) else "unreachable"
    return TransientSmtpError(redact(f"{VENDOR} {kind}: {type(exc).__name__}: {exc}", secrets))


def _subject(page: Page) -> str:
    if page.action is PageAction.TRIGGER:
        return f"[{page.severity.value}] {page.incident_id}: {page.title}"
    return f"[{page.action.value}d] {page.incident_id}: {page.title}"


def _plain(page: Page) -> str:
    lines = [_subject(page), ""]
    if page.action is not PageAction.TRIGGER:
        lines.append(f"{page.action.value}d" + (f" by {page.actor}" if page.actor else ""))
    if page.summary:
        lines += [page.summary, ""]
    lines.append(f"Paged: {page.recipient} (urgency {page.urgency.value})")
    if page.ack_url and page.action is PageAction.TRIGGER:
        lines.append(f"Acknowledge: {page.ack_url}")
    lines += [f"{link.text or link.href}: {link.href}" for link in page.links]
    return "\n".join(lines) + "\n"


def _html(page: Page) -> str:
    esc = html.escape
    parts = [f"<h2>{esc(_subject(page))}</h2>"]
    if page.action is not PageAction.TRIGGER:
        by = f" by {esc(page.actor)}" if page.actor else ""
        parts.append(f"<p>{esc(page.action.value)}d{by}</p>")
    if page.summary:
        parts.append(f"<p>{esc(page.summary)}</p>")
    parts.append(f"<p>Paged: {esc(page.recipient)} (urgency {esc(page.urgency.value)})</p>")
    if page.ack_url and page.action is PageAction.TRIGGER:
        parts.append(f'<p><a href="{esc(page.ack_url)}"><strong>Acknowledge</strong></a></p>')
    items = "".join(
        f'<li><a href="{esc(link.href)}">{esc(link.text or link.href)}</a></li>'
        for link in page.links
    )
    if items:
        parts.append(f"<ul>{items}</ul>")
    return "<html><body>" + "".join(parts) + "</body></html>"


def build_message(page: Page, *, sender: str, domain: str) -> EmailMessage:
    """The email for ``page``: plain text and HTML, stable Message-ID, threaded follow-ups."""
    msg = EmailMessage()
    msg["Subject"] = _subject(page)
    msg["From"] = sender
    msg["To"] = formataddr((page.contact.display_name, page.contact.address))
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(page.delivery_key, domain)
    msg["X-Fireline-Incident"] = page.incident_id
    msg["X-Fireline-Dedup-Key"] = page.dedup_key
    if page.action is not PageAction.TRIGGER:
        parent = page.external_id or message_id(page.dedup_key, domain)
        msg["In-Reply-To"] = parent
        msg["References"] = parent
    msg.set_content(_plain(page))
    msg.add_alternative(_html(page), subtype="html")
    return msg


class EmailNotifier:
    """Sends pages through one SMTP server (optionally STARTTLS and login)."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 25,
        sender: str,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        """Configure the provider; ``sender`` is the From address (``fireline@example.com``)."""
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        self._domain = sender.rpartition("@")[2] or "fireline.invalid"

    def message(self, page: Page) -> EmailMessage:
        """The email for ``page`` as this provider sends it."""
        return build_message(page, sender=self._sender, domain=self._domain)

    def deliver(self, page: Page) -> PageResult:
        """Send ``page`` (blocking); raise a classified error on failure."""
        msg = self.message(page)
        smtp = smtplib.SMTP(timeout=self._timeout)
        try:
            smtp.connect(self._host, self._port)
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username:
                smtp.login(self._username, self._password)
            smtp.send_message(msg, from_addr=self._sender, to_addrs=[page.contact.address])
        except OSError as exc:
            smtp.close()
            # smtplib's exceptions are OSErrors too, so this is every failure it has.
            raise classify_smtp_error(exc, (self._password,)) from None
        # Once DATA is accepted the mail is sent: a failing QUIT must not cause a resend.
        try:
            smtp.quit()
        except OSError:
            smtp.close()
        return PageResult(
            provider=ContactKind.EMAIL,
            delivered=True,
            external_id=str(msg["Message-ID"]),
            detail=f"sent to {page.contact.address}",
            action=page.action,
            dedup_key=page.dedup_key,
        )

    async def notify(self, page: Page) -> PageResult:
        """Send ``page`` from a worker thread."""
        return await asyncio.to_thread(self.deliver, page)
