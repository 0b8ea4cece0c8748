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
//   - The connections: a pool of Config.Connections SMTP sessions, each carrying one
//     transaction at a time, dialled on first use, kept open between messages and
//     redialled when broken. A Send waits for a free connection for at most
//     Config.Timeout. go-mail opens the sessions (dial, TLS policy, EHLO, AUTH) and
//     composes the messages; the transactions are the channel's own, on go-mail's
//     smtp.Client: MAIL, RCPT, DATA, the message, and nothing else for a message the
//     server accepts. When the server advertises PIPELINING (RFC 2920), MAIL, the
//     RCPTs and DATA go out in one write and their replies are read together, and the
//     message with its final "." in a second: two round trips a message. Otherwise
//     each command waits for its reply. The reply to the end of DATA ends the
//     transaction (RFC 5321 4.1.1.4), so no RSET follows it, and no NOOP probes the
//     session first: a session that died while idle fails MAIL or RCPT instead,
//     before the server could take anything. A refused MAIL or RCPT is followed by
//     RSET, which leaves the session ready for the next message (if RSET fails, the
//     session is dropped). Pipelined, RSET follows the reply to DATA; a server that
//     answers that DATA with 354 all the same gets an empty message first, or, if it
//     took some recipient, loses the session, so that nobody gets an empty message.
//   - The SMTP URL (ParseURL): smtp://user:pass@host:port?tls=none|starttls|tls.
//
// # Retry decisions
//
// The Send error follows the channels.Channel contract (see classify):
//
//   - 250 to the end of DATA: sent. Nothing follows it in the transaction, so nothing
//     can make it unsent.
//   - 5xx: permanent, dead-lettered by the router.
//   - 4xx: transient, retried by the router with backoff. 421 (the server closing
//     the session) also drops the session.
//   - No reply (a lost connection, a timeout, the context's end): transient; the
//     session is abandoned and the next Send redials.
//   - A reused session whose MAIL or RCPT got no reply, or 421 (typically a server
//     that timed the idle connection out): nothing reached the server, and the
//     message goes out at once on a new session within the same Send, once.
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
