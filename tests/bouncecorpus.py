"""Real-shaped delivery reports, delay and success notices, abuse reports, automatic and
human replies, as the world's mail servers and programs write them (issue 22).

Made here, not copied: each family's layout, wording and language follow what that
mail server or provider sends (Postfix, Exim, Sendmail, qmail, Courier, Exchange
2003/2007 and Microsoft 365 in five languages, Gmail, Yahoo, Lotus Domino and Notes,
GMX/web.de, T-Online, IONOS, Strato, amavis, IMail, Japanese, Chinese and Russian
providers, the filtering appliances …), with synthetic addresses only. Each fixture
states what it is: its kind, the contact it is about and the status code written in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

OURS = "koordination@buendnis.example"


@dataclass(frozen=True)
class Fixture:
    name: str
    data: bytes
    kind: str  # "bounce", "notice", "complaint", "autoreply", "reply"
    recipient: str = ""  # the contact it is about
    status: str = ""  # the status code written in it ("" when it has none)
    original_id: str = ""  # the Message-ID of the send it returns


def _original(rcpt: str, mid: str) -> str:
    return (f"Return-Path: <{OURS}>\nMessage-ID: {mid}\nDate: Mon, 30 Nov 2026 10:00:00 +0100\n"
            f"From: Buendnis <{OURS}>\nTo: {rcpt}\nSubject: Einladung zum Bündnis\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
            "Sehr geehrte Damen und Herren,\nwir laden Sie ein.\n")


def _headers(sender: str, subject: str, *, null: bool = True,
             extra: str = "") -> str:
    return (("Return-Path: <>\n" if null else "")
            + f"From: {sender}\nTo: {OURS}\nSubject: {subject}\n"
            f"Date: Tue, 01 Dec 2026 08:00:00 +0100\nMessage-ID: {make_msgid('mx.example')}\n"
            + extra + "MIME-Version: 1.0\n")


def dsn(sender: str, subject: str, text: str, blocks: list[tuple[str, str, str, str]],
        rcpt: str, mid: str, *, original: str = "rfc822", charset: str = "utf-8",
        report_type: str = "delivery-status") -> bytes:
    """multipart/report (RFC 3464): text, delivery-status with one block per (final,
    original recipient, action, status + diagnostic), the original or its headers."""
    parts = [f"Content-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: 8bit"
             f"\n\n{text}\n"]
    status = "Reporting-MTA: dns; mx.provider.example\nArrival-Date: Tue, 01 Dec 2026\n\n"
    for final, orig, action, diag in blocks:
        code = diag.split(" ")[1] if diag.count(" ") and diag[0].isdigit() else ""
        status += f"Final-Recipient: rfc822; {final}\n"
        if orig:
            status += f"Original-Recipient: rfc822; {orig}\n"
        status += f"Action: {action}\n"
        if code or action != "failed":
            status += f"Status: {code or {'delayed': '4.4.1', 'delivered': '2.0.0', 'relayed': '2.0.0', 'expanded': '2.0.0'}.get(action, '5.0.0')}\n"  # noqa: E501
        if diag:
            status += f"Diagnostic-Code: smtp; {diag}\n"
        status += "\n"
    parts.append(f"Content-Type: message/{report_type}\n\n{status}")
    if original == "rfc822":
        parts.append(f"Content-Type: message/rfc822\n\n{_original(rcpt, mid)}")
    elif original == "headers":
        head = _original(rcpt, mid).split("\n\n")[0]
        parts.append(f"Content-Type: text/rfc822-headers\n\n{head}\n")
    body = "".join(f"--RB\n{p}\n" for p in parts) + "--RB--\n"
    return (_headers(sender, subject) + f"Content-Type: multipart/report; "
            f"report-type={report_type}; boundary=\"RB\"\n\n{body}").encode()


def plain(sender: str, subject: str, text: str, rcpt: str, mid: str, *,
          original: str = "inline", divider: str = "--- Below this line is a copy of the "
          "message.", null: bool = True, extra: str = "") -> bytes:
    """A server's own text report; the original inline after ``divider``, attached as
    message/rfc822, or left out."""
    head = _headers(sender, subject, null=null, extra=extra)
    if original == "rfc822":
        return (head + "Content-Type: multipart/mixed; boundary=\"PB\"\n\n--PB\n"
                "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                f"{text}\n--PB\nContent-Type: message/rfc822\n\n{_original(rcpt, mid)}"
                "--PB--\n").encode()
    copy = f"\n{divider}\n\n{_original(rcpt, mid)}" if original == "inline" else ""
    return (head + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit"
            f"\n\n{text}\n{copy}").encode()


def _x(rcpt: str) -> str:  # an address the contact's mail was forwarded to
    local, _, domain = rcpt.partition("@")
    return f"{local}.weiter@relay-{domain}"


# Each family: a function (rcpt, mid, variant) -> (bytes, status). variant 0: the
# original attached or quoted; 1: another wording/recipient layout the family uses;
# 2: the contact behind an alias or a second block; 3: no original at all.
def postfix(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("This is the mail system at host mx.provider.example.\n\nI'm sorry to have to "
            "inform you that your message could not\nbe delivered to one or more recipients. "
            "It's attached below.\n\n                   The mail system\n\n"
            f"<{r}>: host mx.kita.example[192.0.2.7] said: 550 5.1.1\n    <{r}>: Recipient "
            "address rejected: User unknown in virtual mailbox table (in reply to RCPT TO "
            "command)")
    blocks = [(r, "", "failed", f"550 5.1.1 <{r}>: Recipient address rejected: User unknown")]
    if v == 2:
        blocks = [(_x(r), "", "delivered", ""), (_x(r) + "x", r, "failed",
                                                  "550 5.1.1 User unknown")]
    return dsn("MAILER-DAEMON@mx.provider.example (Mail Delivery System)",
               "Undelivered Mail Returned to Sender", text, blocks, r, m,
               original="none" if v == 3 else "headers" if v == 1 else "rfc822"), "5.1.1"


def strato(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Dies ist eine automatisch erstellte Nachricht des Mailsystems.\n\nIhre Nachricht "
            "konnte an einen oder mehrere Empfänger nicht zugestellt werden.\n\n"
            f"<{r}>: 550 5.1.1 Mailbox does not exist")
    return dsn("MAILER-DAEMON@smtp.strato.example", "Unzustellbar: Einladung zum Bündnis",
               text, [(r, "", "failed", "550 5.1.1 Mailbox does not exist")], r, m,
               original="none" if v == 3 else "rfc822"), "5.1.1"


def exim(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("This message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of its\n"
            "recipients. This is a permanent error. The following address(es) failed:\n\n"
            f"  {r}\n    host mx.kita.example [192.0.2.9]\n    SMTP error from remote mail "
            f"server after RCPT TO:<{r}>:\n    550 5.1.1 <{r}>: Recipient address rejected: "
            "User unknown")
    return plain("Mail Delivery System <Mailer-Daemon@exim.provider.example>",
                 "Mail delivery failed: returning message to sender", text, r, m,
                 original="none" if v == 3 else "inline",
                 divider="------ This is a copy of the message, including all the headers. "
                 "------", extra=f"X-Failed-Recipients: {r}\n" if v != 1 else ""), "5.1.1"


def gmx(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("This message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of\nits "
            "recipients. This is a permanent error. The following address\nfailed:\n\n"
            f"\"{r}\":\nSMTP error from remote server after RCPT command:\nhost: "
            f"mx.kita.example\n5.1.1 <{r}>... User Unknown")
    domain = "gmx.example" if v % 2 else "web.example"
    return plain(f"MAILER-DAEMON@mail.{domain}",
                 "Mail delivery failed: returning message to sender", text, r, m,
                 original="none" if v == 3 else "inline",
                 divider="--- The header of the original message is following. ---",
                 null=False), "5.1.1"


def ionos(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("This message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of\nits "
            "recipients. This is a permanent error.\n\nThe following address failed:\n\n"
            f"{r}\n\nFor the following reason:\n\nMail size limit exceeded. For explanation "
            "visit\nhttp://postmaster.provider.example/en/error-messages")
    return plain("\"Mail Delivery System\" <mailer-daemon@kundenserver.example>",
                 "Mail delivery failed: returning message to sender", text, r, m,
                 original="none" if v == 3 else "inline",
                 divider="--- The header of the original message is following. ---",
                 null=False), ""


def sendmail(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("The original message was received at Tue, 1 Dec 2026 08:00:00 +0100\nfrom "
            "relay.buendnis.example [192.0.2.1]\n\n   ----- The following addresses had "
            f"permanent fatal errors -----\n<{r}>\n    (reason: 550 5.1.1 <{r}>... User "
            "unknown)\n\n   ----- Transcript of session follows -----\n... while talking to "
            f"mx.kita.example.:\n>>> RCPT To:<{r}>\n<<< 550 5.1.1 <{r}>... User unknown")
    return dsn("Mail Delivery Subsystem <MAILER-DAEMON@sendmail.provider.example>",
               "Returned mail: see transcript for details", text,
               [(r, "", "failed", f"550 5.1.1 <{r}>... User unknown")], r, m,
               original="none" if v == 3 else "rfc822"), "5.1.1"


def qmail(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Hi. This is the qmail-send program at mx4.provider.example.\nI'm afraid I wasn't "
            "able to deliver your message to the following addresses.\nThis is a permanent "
            f"error; I've given up. Sorry it didn't work out.\n\n<{r}>:\nSorry, no SMTP "
            "connection got far enough; most progress was RCPT TO response; remote host "
            f"192.0.2.32 said: 550 Unknown user {r}\n. (#5.5.0)")
    return plain("MAILER-DAEMON@mx4.provider.example", "failure notice", text, r, m,
                 original="none" if v == 3 else "inline"), "5.5.0"


def courier(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("This is a delivery status notification from mx.provider.example,\nrunning the "
            "Courier mail server, version 1.1.\n\nThe original message was received on Tue, "
            f"01 Dec 2026\n\n<{r}>: mx.kita.example [192.0.2.8]:\n>>> RCPT TO:<{r}>\n<<< 550 "
            "5.7.1 Unable to deliver to this address")
    return dsn("Courier mail server at mx.provider.example <@>",
               "NOTICE: mail delivery status.", text,
               [(r, "", "failed", "550 5.7.1 Unable to deliver to this address")], r, m,
               original="none" if v == 3 else "headers"), "5.7.1"


def exchange2003(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = (f"Your message\n\n  To:      {r}\n  Subject: Einladung\n  Sent:    Tue, 1 Dec "
            f"2026 08:00:00 +0100\n\ndid not reach the following recipient(s):\n\n{r} on Tue, "
            "1 Dec 2026 08:00:01 +0100\n    The recipient name is not recognized\n"
            "    MSEXCH:IMS:KITA:ORG:MAIL 0 (000C05A6) Unknown Recipient")
    return plain("System Administrator <postmaster@exchange.kita.example>", "Undeliverable: "
                 "Einladung" if v % 2 else "E", text, r, m,
                 original="none" if v == 3 else "rfc822"), ""


def _o365(lang: str) -> tuple[str, str, str]:
    return {
        "en": ("Undeliverable: Einladung", "Delivery has failed to these recipients or "
               "groups:", "The email address you entered couldn't be found."),
        "de": ("Unzustellbar: Einladung", "Die Zustellung an folgende Empfänger oder Gruppen "
               "ist fehlgeschlagen:", "Die eingegebene E-Mail-Adresse wurde nicht gefunden."),
        "fr": ("Non remis : Einladung", "La remise à ces destinataires ou groupes a échoué :",
               "L'adresse de messagerie que vous avez entrée est introuvable."),
        "it": ("Non recapitabile: Einladung", "Impossibile recapitare il messaggio ai "
               "destinatari o ai gruppi seguenti:", "Indirizzo di posta elettronica non "
               "trovato."),
        "es": ("No se puede entregar: Einladung", "Error al entregar el mensaje a estos "
               "destinatarios o grupos:", "No se encontró la dirección de correo."),
        "nl": ("Onbestelbaar: Einladung", "Aflevering is mislukt voor deze ontvangers of "
               "groepen:", "Het e-mailadres is niet gevonden."),
        "pl": ("Niedostarczalne: Einladung", "Wiadomość nie może zostać dostarczona do tych "
               "adresatów lub grup:", "Nie można odnaleźć adresu e-mail."),
    }[lang]


def office365(lang: str):  # type: ignore[no-untyped-def]
    def family(r: str, m: str, v: int) -> tuple[bytes, str]:
        subject, head, why = _o365(lang)
        code = "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP " \
               "address lookup"
        text = (f"{head}\n\n{r}\n{why}\n\n\n\n\nDiagnostic information for administrators:\n"
                f"\nGenerating server: AM0PR01MB0001.eurprd01.prod.outlook.example\n\n{r}\n"
                f"Remote Server returned '{code}'")
        blocks = [(r, r, "failed", code)]
        if v == 2:
            blocks = [(_x(r), "", "failed", "550 5.4.1 Recipient address rejected: Access "
                       "denied"), (r, r, "failed", code)]
        return dsn("Microsoft Outlook <MAILER-DAEMON@EUR01.prod.outlook.example>", subject,
                   text, blocks, r, m, original="none" if v == 3 else "rfc822"), "5.1.10"
    family.__name__ = f"office365-{lang}"
    return family


def gmail(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = (f"** Address not found **\n\nYour message wasn't delivered to {r} because the "
            "address couldn't be found, or is unable to receive mail.\n\nThe response from "
            "the remote server was:\n550 5.1.1 The email account that you tried to reach "
            "does not exist.")
    return dsn("Mail Delivery Subsystem <mailer-daemon@googlemail.example>",
               "Delivery Status Notification (Failure)", text,
               [(r, "", "failed", "550 5.1.1 The email account that you tried to reach does "
                 "not exist.")], r, m, original="none" if v == 3 else "rfc822"), "5.1.1"


def yahoo(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Sorry, we were unable to deliver your message to the following address.\n\n"
            f"<{r}>:\n554: delivery error: dd This user doesn't have a yahoo.com account "
            f"({r}) [0] - mta1022.mail.ne1.yahoo.example")
    return plain("MAILER-DAEMON@yahoo.example", "Failure Notice", text, r, m,
                 original="none" if v == 3 else "inline"), ""


def domino(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = (f"Your message\n\n  Subject: Einladung\n\nwas not delivered to:\n\n  {r}\n\n"
            f"because:\n\n  User Kita ({r}) not listed in Domino Directory")
    return plain("Postmaster@domino.kita.example", f"DELIVERY FAILURE: User Kita ({r}) not "
                 "listed in Domino Directory", text, r, m,
                 original="rfc822" if v == 0 else "none", null=False), ""


def notes(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("------- Failure Reasons  --------\n\nUser not listed in public Name & Address "
            f"Book\n{r}\n\n------- Returned Message --------\n")
    return plain("Mail Router <mailrouter@notes.kita.example>", "Undeliverable Message", text,
                 r, m, original="none" if v == 3 else "inline",
                 divider="", null=True), ""


def tonline(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("|------------------------- Failed addresses follow: ---------------------|\n"
            f" <{r}> ... unknown user / Empfaenger unbekannt\n"
            "|------------------------- Message text follows: ------------------------|")
    return plain("Mail Delivery System <MAILER-DAEMON@mailout.t-online.example>",
                 "Mail delivery failed", text, r, m, original="none" if v == 3 else "inline",
                 divider=""), ""


def amavis(r: str, m: str, v: int) -> tuple[bytes, str]:
    code = f"550 5.1.1 <{r}>: Recipient address rejected: User unknown in virtual mailbox table"
    text = (f"The message WAS NOT relayed to:\n  <{r}>: [127.0.0.1] said:\n   550 5.1.1 "
            f"Failed, id=02022-02, from MTA([127.0.0.1]:10025): {code}\n\nThis nondelivery "
            "report was generated by the program amavisd-new at host filter.example.")
    return dsn("\"Content-filter at filter.example\" <postmaster@filter.example>",
               "Undeliverable mail, MTA-BLOCKED", text, [(r, r, "failed", code)], r, m,
               original="none" if v == 3 else "headers"), "5.1.1"


def imail(r: str, m: str, v: int) -> tuple[bytes, str]:
    return plain("\"Postmaster\" <postmaster@imail.kita.example>", "Undeliverable Mail",
                 f"Unknown user: {r}\n", r, m, original="none" if v == 3 else "inline",
                 divider="Original message follows.", null=False), ""


def ezweb(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("次のあて先へのメッセージはエラーのため送信できませんでした。\n\n送信先メール"
            "アドレスが見つかりませんでした。\nメールアドレスをご確認の上、再送信してください。"
            f"\n\nThe user(s) account is disabled.\n\n<{r}>")
    return plain("Postmaster@ezweb.example", "Mail System Error - Returned Mail", text, r, m,
                 original="rfc822" if v in (0, 1) else "none", null=False), ""


def biglobe(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("送信したメールは以下の理由で相手に届きませんでした。\n\n宛先のメールアドレスが"
            f"存在しません。\n\n<{r}>: 550 5.1.1 user unknown")
    return plain("MAILER-DAEMON@biglobe.example", "メール配信エラー" if v % 2 else
                 "Returned mail: User unknown", text, r, m,
                 original="none" if v == 3 else "rfc822"), "5.1.1"


def qq(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = (f"很抱歉您的邮件无法送达。\n\n收件人：{r}\n退信原因：550 Mailbox not found or "
            "access denied")
    return plain("\"Postmaster\" <MAILER-DAEMON@qq.example>", "系统退信" if v % 2 else
                 "退信：Einladung zum Bündnis", text, r, m,
                 original="none" if v == 3 else "rfc822", null=False), ""


def netease(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = (f"您发送的邮件未能送达以下收件人：\n{r}\n投递失败原因：550 5.1.1 User not found")
    return plain("postmaster@163.example", "来自postmaster@163.example的退信", text, r, m,
                 original="none" if v == 3 else "rfc822", null=False), "5.1.1"


def mailru(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Сообщение не было доставлено одному или нескольким получателям.\n\n"
            f"{r}\nSMTP error from remote mail server after RCPT TO:<{r}>:\n550 Message was "
            "not accepted -- invalid mailbox.")
    return plain("Mail Delivery System <mailer-daemon@corp.mail.example>",
                 "Недоставленное сообщение", text, r, m,
                 original="none" if v == 3 else "rfc822"), ""


def yandex(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Это письмо отправлено сервером Яндекс.Почты.\n\nК сожалению, ваше письмо не "
            f"может быть доставлено одному или нескольким получателям:\n{r}\n\n"
            "Recipient address rejected: User unknown")
    return dsn("mailer-daemon@yandex.example", "Недоставленное сообщение", text,
               [(r, "", "failed", "550 5.7.1 No such user!")], r, m,
               original="none" if v == 3 else "rfc822"), "5.7.1"


def orange(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Ce message vous a été envoyé automatiquement par le serveur de messagerie.\n\n"
            "Votre message n'a pas pu être remis à un ou plusieurs destinataires.\n\n"
            f"{r}\n550 5.1.1 Adresse d'au moins un destinataire invalide")
    return plain("MAILER-DAEMON@orange.example", "Échec de la remise du message", text, r, m,
                 original="none" if v == 3 else "rfc822"), "5.1.1"


def messagelabs(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Could not deliver message to the following recipient(s):\n\nFailed Recipient: "
            f"{r}\nReason: Remote host said: 550 5.1.1 User unknown")
    return plain("MAILER-DAEMON@messagelabs.example", "Mail Delivery Failure", text, r, m,
                 original="none" if v == 3 else "rfc822"), "5.1.1"


def mimecast(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = (f"Your message couldn't be delivered to {r}.\n\nThe recipient's mail server "
            "rejected the message: 550 Invalid Recipient - https://community.mimecast."
            "example/docs")
    return plain("Mimecast Postmaster <postmaster@mimecast.example>", "Failed delivery: "
                 "Einladung", text, r, m, original="none" if v == 3 else "rfc822",
                 null=False), ""


def barracuda(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = (f"Your message to: {r}\nwas not delivered: 550 5.7.1 Message rejected by the "
            "recipient's bulk email filter.")
    return dsn("Barracuda Email Security <postmaster@barracuda.kita.example>",
               "Message delivery failure", text,
               [(r, "", "failed", "550 5.7.1 Message rejected")], r, m,
               original="none" if v == 3 else "headers"), "5.7.1"


def trendmicro(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = (f"Unable to deliver message to <{r}>.\nReason: 5.1.1 Recipient address "
            "rejected: User unknown.")
    return plain("Mail Administrator <postmaster@imss.kita.example>",
                 "Delivery Status Notification", text, r, m,
                 original="none" if v == 3 else "rfc822"), "5.1.1"


def mxlogic(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("This message was created automatically by mail delivery software.\n\nA message "
            "that you sent could not be delivered to one or more of its\nrecipients. This is a "
            f"permanent error. The following address(es) failed:\n\n  {r}\n    SMTP error "
            "from remote mail server after RCPT TO:\n    550 5.1.1 User unknown")
    return plain("Mail Delivery System <MAILER-DAEMON@mxlogic.example>",
                 "Mail delivery failed: returning message to sender", text, r, m,
                 original="none" if v == 3 else "inline",
                 divider="------ This is a copy of the message, including all the headers. "
                 "------"), "5.1.1"


def amazonses(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("An error occurred while trying to deliver the mail to the following "
            f"recipients:\n{r}")
    return dsn("MAILER-DAEMON@amazonses.example", "Delivery Status Notification (Failure)",
               text, [(r, "", "failed", "550 5.1.1 user unknown")], r, m,
               original="none" if v == 3 else "rfc822"), "5.1.1"


def zoho(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("This message was created automatically by mail delivery software.\nA message "
            "that you sent could not be delivered to one or more of its recipients. This is "
            f"a permanent error.\n\n{r}, ERROR CODE :550 - Requested action not taken: "
            "mailbox unavailable")
    return plain("mailer-daemon@mail.zoho.example", "Undelivered Mail Returned to Sender",
                 text, r, m, original="none" if v == 3 else "rfc822"), ""


def opensmtpd(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Hi!\n\nThis is the MAILER-DAEMON, please DO NOT REPLY to this email.\n\nAn error "
            "has occurred while attempting to deliver a message for\nthe following list of "
            f"recipients:\n\n{r}: 550 5.1.1 <{r}>: Recipient address rejected: User unknown")
    return plain("Mailer Daemon <MAILER-DAEMON@smtpd.provider.example>",
                 "Delivery status notification: error", text, r, m,
                 original="none" if v == 3 else "inline",
                 divider="Below is a copy of the original message:"), "5.1.1"


def james(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Hi. This is the James mail server at james.kita.example.\nI'm afraid I wasn't "
            "able to deliver your message to the following addresses.\nThis is a permanent "
            "error; I've given up. Sorry it didn't work out.  Below\nI include the list of "
            f"recipients and the reason why I was unable to deliver\nyour message.\n\nFailed "
            f"recipient(s):\n{r}\n\nError message:\n550 5.1.1 Requested action not taken: "
            "mailbox unavailable")
    return plain("MAILER-DAEMON@james.kita.example", "[BOUNCE]", text, r, m,
                 original="none" if v == 3 else "rfc822"), "5.1.1"


def mdaemon(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("The attached message had PERMANENT fatal delivery errors!\n\nAfter one or more "
            "unsuccessful delivery attempts the attached message has\nbeen removed from the "
            f"mail queue on this server.\n\n--- Session Transcript ---\nRCPT To:<{r}>\n550 "
            "5.1.1 User unknown\n--- End Transcript ---")
    return plain("MDaemon@mdaemon.kita.example", f"Permanent Delivery Failure: {r}", text,
                 r, m, original="none" if v == 3 else "rfc822"), "5.1.1"


def verizon(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Message could not be delivered to the following recipients:\n\n"
            f"{r}: 550 5.1.1 unknown or illegal alias")
    return plain("\"Mail Administrator\" <postmaster@verizon.example>", "Undeliverable "
                 "Message", text, r, m, original="none" if v == 3 else "rfc822",
                 null=False), "5.1.1"


def kerio(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("Ihre Nachricht konnte nicht zugestellt werden.\n\nDie folgenden Empfänger "
            f"konnten nicht erreicht werden:\n\n{r}\n  Grund: 550 5.1.1 Mailbox unbekannt")
    return dsn("Kerio Connect <postmaster@kerio.kita.example>",
               "Unzustellbare Nachricht: Einladung", text,
               [(r, "", "failed", "550 5.1.1 Mailbox unbekannt")], r, m,
               original="none" if v == 3 else "rfc822"), "5.1.1"


def zimbra(r: str, m: str, v: int) -> tuple[bytes, str]:
    text = ("This is the mail system at host zimbra.kita.example.\n\nI'm sorry to have to "
            "inform you that your message could not\nbe delivered to one or more recipients."
            f"\n\n<{r}>: mailbox unavailable: 550 5.2.1 account disabled")
    return dsn("MAILER-DAEMON@zimbra.kita.example (Mail Delivery System)",
               "Undelivered Mail Returned to Sender", text,
               [(r, "", "failed", "550 5.2.1 account disabled")], r, m,
               original="none" if v == 3 else "rfc822"), "5.2.1"


FAMILIES = [postfix, strato, exim, gmx, ionos, sendmail, qmail, courier, exchange2003,
            *(office365(lang) for lang in ("en", "de", "fr", "it", "es", "nl", "pl")),
            gmail, yahoo, domino, notes, tonline, amavis, imail, ezweb, biglobe, qq, netease,
            mailru, yandex, orange, messagelabs, mimecast, barracuda, trendmicro, mxlogic,
            amazonses, zoho, opensmtpd, james, mdaemon, verizon, kerio, zimbra]


def bounces() -> Iterator[Fixture]:
    """Every family in its four variants, each about its own contact."""
    for number, family in enumerate(FAMILIES):
        for variant in range(4):
            rcpt = f"kontakt{number:02d}{variant}@kita{number:02d}.example"
            mid = f"<inv-{number:02d}{variant}@buendnis.example>"
            data, status = family(rcpt, mid, variant)
            yield Fixture(f"{family.__name__}-{variant}", data, "bounce", rcpt, status,
                          mid if b"Message-ID: <inv-" in data else "")


def notices() -> Iterator[Fixture]:
    """Delays, successes, read receipts and abuse reports: never "unzustellbar"."""
    for number, (sender, subject, action, diag) in enumerate([
        ("MAILER-DAEMON@mx.provider.example", "Delayed Mail (still being retried)", "delayed",
         "450 4.2.0 Mailbox temporarily unavailable"),
        ("Microsoft Outlook <postmaster@outlook.example>", "Delivery delayed: Einladung",
         "delayed", "451 4.4.0 Message delayed"),
        ("Microsoft Outlook <postmaster@outlook.example>", "Zustellung verzögert: Einladung",
         "delayed", "451 4.4.0 DNS query failed"),
        ("Mail Delivery Subsystem <mailer-daemon@googlemail.example>",
         "Delivery Status Notification (Delay)", "delayed", "421 4.7.0 Try again later"),
        ("MAILER-DAEMON@mx.provider.example", "Successful Mail Delivery Report", "delivered",
         ""),
        ("Microsoft Outlook <postmaster@outlook.example>", "Delivered: Einladung",
         "delivered", ""),
        ("MAILER-DAEMON@mx.provider.example", "Relayed: Einladung", "relayed", ""),
        ("Mail Delivery System <MAILER-DAEMON@exim.example>",
         "Warning: message 1abc-000 delayed 24 hours", "delayed", "451 4.4.1 timed out"),
    ]):
        rcpt = f"notiz{number}@kita.example"
        text = ("THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.\n\nYour "
                "message could not be delivered for 4 hours. It will be retried until it is "
                "5 days old." if action == "delayed" else "Your message was delivered.")
        yield Fixture(f"notice-{number}", dsn(sender, subject, text, [(rcpt, "", action, diag)],
                                              rcpt, f"<n{number}@buendnis.example>"), "notice")
    for number, text in enumerate([
        "This is a warning message only. Delivery of your message has been delayed; the "
        "server will retry for 4 more days.",
        "Warnung: Ihre Nachricht wurde noch nicht zugestellt. Es wird weiter versucht.",
        "Message delivery to the host mx.kita.example has been delayed. Delivery will "
        "continue to try for 2 days.",
    ]):
        yield Fixture(f"notice-text-{number}", plain(
            "MAILER-DAEMON@mx.provider.example", "Warning: could not send message for past 4 "
            "hours" if number % 2 == 0 else "Zustellung verzögert", text,
            f"t{number}@kita.example", f"<t{number}@buendnis.example>"), "notice")
    for number in range(3):  # read receipts (RFC 8098)
        data = dsn(f"Leitung <leitung{number}@kita.example>", "Gelesen: Einladung",
                   "Ihre Nachricht wurde gelesen.", [], f"leitung{number}@kita.example",
                   f"<mdn{number}@buendnis.example>", report_type="disposition-notification")
        yield Fixture(f"read-receipt-{number}", data, "notice")
    for number in range(6):  # abuse feedback (RFC 5965): the person marked it as spam
        rcpt = f"beschwerde{number}@kita.example"
        mid = f"<arf-{number}@buendnis.example>"
        report = ("Feedback-Type: abuse\nUser-Agent: FeedbackLoop/1.0\nVersion: 1\n"
                  f"Original-Mail-From: <{OURS}>\nOriginal-Rcpt-To: <{rcpt}>\n"
                  "Arrival-Date: Tue, 01 Dec 2026 08:00:00 +0100\n")
        body = (f"--AR\nContent-Type: text/plain\n\nThis is an email abuse report.\n"
                f"--AR\nContent-Type: message/feedback-report\n\n{report}\n"
                f"--AR\nContent-Type: message/rfc822\n\n{_original(rcpt, mid)}--AR--\n")
        data = (_headers("Feedback Loop <fbl@isp.example>", "Abuse report", null=False)
                + "Content-Type: multipart/report; report-type=feedback-report; "
                f"boundary=\"AR\"\n\n{body}").encode()
        yield Fixture(f"arf-{number}", data, "complaint", rcpt, "", mid)


def _reply(sender: str, subject: str, text: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, OURS, subject
    msg["Message-ID"] = make_msgid("kita.example")
    msg["In-Reply-To"] = "<inv-reply@buendnis.example>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg.as_bytes()


QUOTE = ("\n\nAm 30.11.2026 um 10:00 schrieb Bündnis <koordination@buendnis.example>:\n"
         "> Sehr geehrte Damen und Herren,\n> wir laden Sie ein.\n")


def human_replies() -> Iterator[Fixture]:
    """People answering: in their words, quoting the invitation; some mention being
    away or quote an out-of-office text – still answers."""
    answers = [
        "Vielen Dank, wir sind gern dabei!", "Wir machen mit. Das Formular folgt.",
        "Leider können wir dieses Jahr nicht teilnehmen.", "Gibt es einen Termin im Januar?",
        "Ich war im Urlaub und antworte erst jetzt: ja, wir sind dabei.",
        "Bitte schicken Sie das Formular noch einmal, es ist nicht angekommen.",
        "Wir leiten das an unsere Fachberatung weiter.", "Sehr gern. Viele Grüße aus Gera",
        "Unser Träger meldet sich nächste Woche.", "Danke! Out of Office bin ich ab Montag.",
        "Wir hatten eine Abwesenheitsnotiz geschickt, entschuldigen Sie bitte.",
        "Thanks, count us in.", "Merci, nous participons.", "Grazie, partecipiamo volentieri.",
        "Wir sind dabei, auch wenn unsere Mail neulich unzustellbar zurückkam.",
        "Herzlichen Dank für die Einladung.", "Können Sie uns mehr Informationen schicken?",
        "Die Kita-Leitung ist bis 15.12. abwesend, ich antworte in Vertretung: ja.",
        "Ja.", "Wir überlegen noch.",
    ]
    for number, text in enumerate(answers):
        subject = ["AW: Einladung zum Bündnis", "Re: Einladung zum Bündnis",
                   "WG: Einladung zum Bündnis", "Antw: Einladung"][number % 4]
        yield Fixture(f"reply-{number}", _reply(f"person{number}@kita.example", subject,
                                                text + QUOTE), "reply")
    for number, quoted in enumerate([
        "> Automatische Antwort: Ich bin bis 04.01. abwesend.",
        "> Out of Office: back on Monday", "> Abwesenheitsnotiz: Einladung",
        "> Undeliverable: Einladung", "> Mail delivery failed: returning message to sender",
        "> Ihre Nachricht konnte nicht zugestellt werden.",
        "> This is an automatically generated Delivery Status Notification",
        "> Auto-Reply: Einladung", "> Réponse automatique : absent",
        "> Abmelden? Antworten Sie mit Abmelden.",
    ]):
        yield Fixture(f"reply-quoting-{number}", _reply(
            f"quote{number}@kita.example", "AW: Einladung", "Wir sind dabei.\n\n" + quoted),
            "reply")
