package dispatcher

import (
	"slices"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
)

// Routes is the routing table: the channels each notification type goes to. Pop-ups
// reach open tabs only; durable types reach the center, email and push, and also ring
// as a pop-up in open tabs, as in Kommo.
var Routes = map[events.Type][]string{
	events.ShowMessage:      {channels.Relay},
	events.ShowMessageError: {channels.Relay},
	events.ShowNotification: {channels.Relay},
	events.AddError:         {channels.Relay, channels.Center, channels.Email, channels.Push},
	events.AddCall:          {channels.Relay, channels.Center, channels.Email, channels.Push},
}

// durableChannels are the channels of the durable types, each with its own JetStream
// consumer, in routing-table order.
func durableChannels() []string {
	var out []string
	for _, t := range events.Types() {
		if !t.Durable() {
			continue
		}
		for _, ch := range Routes[t] {
			if !slices.Contains(out, ch) {
				out = append(out, ch)
			}
		}
	}
	return out
}

// requiredChannels are all channels named in the routing table.
func requiredChannels() []string {
	out := durableChannels()
	for _, t := range events.Types() {
		for _, ch := range Routes[t] {
			if !slices.Contains(out, ch) {
				out = append(out, ch)
			}
		}
	}
	return out
}
