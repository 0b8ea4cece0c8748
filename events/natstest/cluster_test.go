package natstest_test

import (
	"context"
	"fmt"
	"testing"

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
	// The restarted node catches up from its store and the leader: asked to lead, it
	// holds all 200.
	c.LeadStream("ORDERS", other)
	if n := msgs(); n != 200 {
		t.Errorf("%d messages on the restarted node, want 200", n)
	}
	if s := c.Node(other).Server; !s.JetStreamIsStreamCurrent("$G", "ORDERS") {
		t.Error("the restarted node is not current")
	}
}
