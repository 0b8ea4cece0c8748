// Package email is the email channel: it sends add_error and add_call notifications
// to the recipient's address through an SMTP server, with github.com/wneessen/go-mail.
//
// # What it owns
//
//   - The message: subject, a multipart/alternative body (text/plain and text/html,
//     from the embedded templates under templates/), and the headers. The HTML part
//     takes the payload's text as sanitized HTML; the plain part its plain-text
//     rendering (events.PlainText). Path links, in the text or as an add_error's link,
//     and an add_call's element are resolved against the CRM's base URL. Dates follow
//     the recipient's locale (a small table of layouts, in UTC).
//   - The recipient: the profile in the directory. No profile or no address is
//     skipped as no_address, email switched off as opted_out.
//   - The connections: a pool of Config.Connections SMTP sessions, each a go-mail
//     Client carrying one transaction at a time, dialled on first use, kept open
//     between messages, checked with NOOP before each transaction and redialled
//     when broken. A Send waits for a free connection for at most Config.Timeout.
//   - The SMTP URL (ParseURL): smtp://user:pass@host:port?tls=none|starttls|tls.
//
// # Retry decisions
//
// The Send error follows the channels.Channel contract (see classify):
//
//   - 250 to the end of DATA: sent. go-mail marks the message delivered before the
//     RSET it sends afterwards, and a failed RSET does not make it unsent: the
//     session is dropped, the message is not sent again.
//   - 5xx: permanent, dead-lettered by the router.
//   - 4xx: transient, retried by the router with backoff.
//   - No reply (code 0: a lost connection, a timeout, the context's end): transient;
//     the session is abandoned and the next Send redials. If the session died before
//     MAIL or RCPT could be answered (typically a server that closed an idle
//     connection), nothing reached the server and the message goes out at once on a
//     new session instead.
//   - Dial, TLS and AUTH failures: transient. They are the server's or the
//     configuration's trouble, not the message's, and the error names the server.
//
// # The at-least-once window
//
// A connection lost after the message's final "." and before the server's reply
// leaves no way to know whether the server took it. It is retried: the recipient may
// get it twice, never zero times. Both copies carry the same Message-ID (a hash of
// event id, account and user at the sender's domain), so clients and people can tell
// it is a resend.
//
// # Invariants
//
//   - Nothing from a payload becomes a header line of its own: go-mail's address
//     setters refuse CR and LF, the subject is folded to one line and RFC 2047-encoded.
//   - The HTML part is html/template output; the only unescaped value is the
//     payload's text, sanitized again here before it is marked safe.
//   - Every message carries Auto-Submitted: auto-generated and
//     X-Auto-Response-Suppress: All, so auto-replies stay away from the sender.
//   - Addresses are not logged or put into returned errors in full (a***@example.com):
//     the router writes errors into logs, dead letters and delivery status.
//   - Send returns within Config.Timeout and when ctx ends: the pooled connection is
//     cut under a transaction that outlives its context, so no Send holds a
//     connection forever and a silent server cannot stall the channel.
//
// It imports channels, channels/directory and events; never dispatcher or another
// channel. The smtptest package is its test kit: a real SMTP server in process.
package email
