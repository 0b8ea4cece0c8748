package natstest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events/natstest"
)

// An R3 stream on a three-node cluster keeps every acknowledged message and takes
// new ones while its leader is stopped, and the node rejoins and catches up when it
// comes back on its ports and store.
func TestClusterStreamSurvivesLosingItsLeader(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	js, err := jetstream.New(c.Conn(t, nats.Name("orders-client")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), natstest.ClusterTimeout)
	defer cancel()
	if _, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage, Replicas: 3,
	}); err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			// Retried with the same id until acknowledged: a failover may lose an ack,
			// the dedup window keeps the message single.
			for {
				_, err := js.Publish(ctx, "orders.new", fmt.Appendf(nil, "%d", i), jetstream.WithMsgID(fmt.Sprint(i)))
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
			}
		}
	}
	publish(0, 100)

	// The node to lose leads the stream and holds the client, which fails over too.
	other := c.ClientNode("orders-client")
	if other < 0 {
		t.Fatal("the client is on no node")
	}
	c.LeadStream("ORDERS", other)
	if got := c.StreamLeader("ORDERS"); got != other {
		t.Fatalf("leader is node %d, want %d", got, other)
	}
	c.Stop(other)
	if c.Node(other).Server != nil {
		t.Fatal("a stopped node still has its server")
	}
	if next := c.WaitStreamLeader("ORDERS"); next == other {
		t.Fatalf("the stopped node %d still leads", other)
	}
	publish(100, 200)
	msgs := func() uint64 {
		t.Helper()
		s, err := js.Stream(ctx, "ORDERS")
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	if n := msgs(); n != 200 {
		t.Errorf("%d messages after losing the leader, want 200", n)
	}

	c.Restart(other)
	if c.ClientNode("nobody") != -1 {
		t.Error("found a client that does not exist")
	}
	// The restarted node catches up from its store and the leader: its own replica
	// comes to hold all 200 and to be current. (Asking it to lead at once can meet a
	// meta layer still settling after the restart: that is the cluster's business,
	// not what this test is about.)
	deadline := time.After(natstest.ClusterTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s := c.Node(other).Server
		held := replicaMsgs(t, s, "ORDERS")
		if held == 200 && s.JetStreamIsStreamCurrent("$G", "ORDERS") {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("the restarted node holds %d messages of 200, current %v", held, s.JetStreamIsStreamCurrent("$G", "ORDERS"))
		case <-tick.C:
		}
	}
	if n := msgs(); n != 200 {
		t.Errorf("%d messages in the stream after the restart, want 200", n)
	}
}

// replicaMsgs is how many messages the server's own replica of stream holds, -1 if it
// has none.
func replicaMsgs(t *testing.T, s *server.Server, stream string) int64 {
	t.Helper()
	jsz, err := s.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range jsz.AccountDetails {
		for _, sd := range a.Streams {
			if sd.Name == stream {
				return int64(sd.State.Msgs)
			}
		}
	}
	return -1
}
