package channels

// UIPrefix is the first token of the internal subjects that carry ready-to-send
// websocket frames to whichever dispatcher holds a user's tabs: ui.<account>.<user>,
// and ui.<account>._all for every connected user of the account. Channels that show
// something in open tabs (the relay's pop-ups, the center's badges) publish there.
const UIPrefix = "ui"

// UISubject is ui.<account>.<user>.
func UISubject(account, user string) string {
	return UIPrefix + "." + account + "." + user
}
