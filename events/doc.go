// Package events is the notification contract in Go: the five payload types of the
// widget API (show_message, show_message_error, show_notification, add_error,
// add_call), Validate, the one validator that the producer client, the HTTP API and
// the router share, the NATS subjects producers publish to, and event ids.
//
// # Invariants
//
//   - A Payload comes out of Validate. Its JSON encoding validates to an equal payload
//     with no warnings, so an event accepted at one hop (the HTTP API, the producer
//     client) is never refused at the next (the router, validating what it consumes).
//     The limits are set so that this holds even for the canonical encoding's size.
//   - Text is sanitized HTML, safe to insert into a page as it is: a[href], b, strong,
//     i, em, p, br and span, and hrefs that pass CheckLink. Header, from and to are
//     plain text without control characters, for renderers to escape. PlainText
//     renders text for push notifications and the text part of an email.
//   - Dates are Unix seconds.
//   - Every rejection is an *Error naming the field and the rule.
//
// # Decisions the contract leaves open
//
//   - A repeated member name: the last value wins, as with JavaScript's JSON.parse,
//     and a warning names it.
//   - Control characters in header, from and to: each run becomes one space, since a
//     line break is never meant in a title or an email subject. In text they are
//     removed, but for tab and newline.
//   - Links refuse whitespace, control and invisible characters, backslashes and
//     credentials ("https://kommo.com@evil.com"), and are at most MaxLinkLen long.
//   - Absolute links in text get target="_blank" and rel="noopener noreferrer"; paths
//     stay in the app and get neither. An anchor whose href is refused keeps its
//     text as a bare <a>, which is no link.
//   - A date of 0 counts as absent: it is what a Go payload whose Date is unset
//     encodes to, and no one means 1970.
//   - element.id and duration must be integer literals (1.0 and 1e3 are refused, as
//     JSON.stringify never writes an integer so); a date may have a fraction.
//   - The 4,096 characters of text count a character reference such as &amp; as one
//     character, so escaping never pushes plain text over the limit, and they hold
//     for the sanitized text as well as for the text sent.
//   - Tags that are removed leave a space, so block elements do not run words together.
//
// # Imports
//
// Every part of the project imports this package, so it imports none of them: no
// dispatcher, no channel, no NATS client (NATS code goes in a sub-package). Beyond the
// standard library it needs only bluemonday and x/net/html for text, and ulid for ids.
package events
