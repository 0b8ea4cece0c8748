// Package directory is the recipient directory: one profile per user of an account
// (email address, name, locale, the email and push switches, and push devices), kept
// in the JetStream KV bucket NOTIFY_DIRECTORY. It is a library shared by the channels
// (email reads the address, push the devices and prunes dead tokens) and the router
// (which expands _all for durable types), not a delivery medium.
//
// # What it owns
//
//   - Profile, its JSON form and its rules: ParseProfile and ParseDevice decode a body
//     strictly (unknown members refused, naming the field), Store checks values and
//     stores them in canonical form. Every rejection is an *events.Error naming the
//     field ("email", "channels.push", "devices[1].platform").
//   - Store: the bucket and every write to it. Keys are <account>.<user>: both names
//     match [A-Za-z0-9_-]{1,64}, which KV keys allow, and _all is never a user.
//     Devices live inside the profile's value, so no push token is ever a key.
//   - Cache: the whole directory in memory, fed by a KV watcher, for lookups without a
//     NATS round trip.
//
// # Invariants
//
//   - Every read-modify-write (register or remove a device, replace a profile, set
//     the switches) is a compare-and-set on the key's revision (kv.Create for a new
//     key, kv.Update with the revision read otherwise), retried on conflict: two
//     writers, in one process or many, never lose each other's change.
//   - A stored profile is valid and canonical: trimmed strings, a bare email address,
//     devices unique by token, oldest first, at most MaxDevices (the oldest dropped),
//     each with its registration time in UTC seconds.
//   - The bucket keeps one value per key (history 1) and a deletion purges the key, so
//     a removed user's personal data leaves the stream at once. A purge leaves a small
//     marker (about 100 bytes on disk) per deleted key.
//   - The cache serves the last complete copy: after a NATS reconnect or a watcher
//     that ended, it reloads everything into a fresh copy and swaps it in when the
//     watcher marks the end of the initial values, so a deletion made while it was cut
//     off is not missed. A change is visible after the watcher's latency (milliseconds).
//     Users answers ErrNotReady before the first load, so _all is retried rather than
//     sent to nobody.
//
// # Decisions
//
//   - Defaults: a new profile has both switches on; the interface channel (pop-ups,
//     notification center) has no switch, as in Kommo.
//   - Registering a device for a user without a profile creates the profile with the
//     defaults: the phone may register before the CRM syncs its user.
//   - Put with Devices nil keeps the registered devices; an empty slice clears them.
//     The devices belong to the mobile app, a profile sync to the CRM, and one must not
//     wipe the other.
//   - Tokens are 1 to 4,096 printable ASCII characters without spaces: FCM's (about
//     160 characters of [A-Za-z0-9:_-]) and APNs' (64 hex digits) with room to grow.
//   - Email: empty (no email; the channel skips with no_address) or one bare address
//     of at most 254 characters as net/mail parses it. Locale: empty or a BCP 47 tag of
//     the common form (en, pt-BR, zh-Hant-TW), not checked against the registry.
//
// # Memory
//
// The cache holds every profile: measured at about 300 bytes for a profile without
// devices plus about 240 bytes per device with an FCM token, so 100,000 users with a
// phone each take about 55 MB in every dispatcher.
//
// # Imports
//
// Only events (names, errors) and the NATS client: never channels, a channel, the
// dispatcher or cmd, so every one of them may import it.
package directory
