package email

import (
	"testing"

	"github.com/kommo-notify/notify/channels/email/smtptest"
	"github.com/kommo-notify/notify/events"
)

// BenchmarkSend is one message after another over one pooled session against the
// in-process sink: composing, the SMTP transaction and the sink's side of it, so
// the figure counts every round trip the client makes per message.
func BenchmarkSend(b *testing.B) {
	srv := smtptest.Start(b)
	s := newSender(b, srv, nil, func(c *Config) { c.Connections = 1 })
	d := delivery(validEvent(b, "bench-1", events.AddCall, seedAddCall))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(b.Context(), d); err != nil {
			b.Fatalf("Send: %v", err)
		}
	}
	if srv.Conns() != 1 {
		b.Errorf("%d connections, want 1", srv.Conns())
	}
}
