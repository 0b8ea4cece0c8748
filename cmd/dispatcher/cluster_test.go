package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels/center"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events/natstest"
	"github.com/kommo-notify/notify/events/token"
)

const (
	clusterTestSecret = "cluster-test-secret-0123456789abcdef"
	clusterAdminKey   = "cluster-admin-key"
	// clusterDaemonName is the connection name the daemon gives itself (connect in
	// main.go): how the test finds the node the daemon sits on.
	clusterDaemonName = "notify-dispatcher"
	// clusterDeadline bounds each wait of the test: it takes seconds normally, but CI
	// machines have two cores and also run it under -race.
	clusterDeadline = 3 * time.Minute
)

// clusterUser is one recipient of the load.
type clusterUser struct{ account, user string }

func (u clusterUser) String() string { return u.account + "/" + u.user }

// The reliability issue's acceptance test: a 3-node JetStream cluster on loopback
// loses a node in the middle of a load of durable events, and every event
// acknowledged to its producer ends up in its user's center exactly once: nothing
// lost, nothing doubled. The node lost is the hardest one: it leads the NOTIFY stream
// and carries the daemon's connection, so the daemon fails over while the stream
// elects a new leader. Losing a node beside the daemon's passes too, and costs
// another half minute waiting out the same ack timeouts (see clusterWaitDelivered):
// it is not run here.
func TestClusterLosesANodeUnderLoadWithoutLosingOrDoublingEvents(t *testing.T) {
	const events = 3000
	users := []clusterUser{{"acme", "1"}, {"acme", "2"}, {"acme", "3"}, {"acme", "4"}, {"globex", "1"}, {"globex", "2"}}

	c := natstest.StartCluster(t, 3)
	d := startDaemon(t, map[string]string{
		"NATS_URL":          c.URLs(),
		"NOTIFY_DATA_DIR":   t.TempDir(),
		"NOTIFY_HTTP_ADDR":  "127.0.0.1:0",
		"NOTIFY_JWT_SECRET": clusterTestSecret,
		"NOTIFY_API_KEYS":   "cluster-producer-key",
		"NOTIFY_ADMIN_KEYS": clusterAdminKey,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon warnings and errors:\n%s", clusterLogTail(d.stderr.String(), 60))
		}
	})
	var asyncErrs atomic.Int64 // the producer's, counted rather than printed
	nc := c.Conn(t, nats.Name("cluster-test-producer"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) { asyncErrs.Add(1) }))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	for _, u := range users {
		clusterPutProfile(t, d, u)
	}
	clusterCheckReplicas(t, js)

	victim := c.ClientNode(clusterDaemonName)
	if victim < 0 {
		t.Fatal("the daemon's connection is on no node")
	}
	c.LeadStream(dispatcher.StreamName, victim)

	want := make(map[clusterUser][]string, len(users))
	msgs := make([]*nats.Msg, events)
	for i := range msgs {
		u := users[i%len(users)]
		id := fmt.Sprintf("cluster-%05d", i)
		want[u] = append(want[u], id)
		msgs[i] = &nats.Msg{
			Subject: "notify." + u.account + "." + u.user + ".add_error",
			Header:  nats.Header{jetstream.MsgIDHeader: []string{id}},
			Data:    fmt.Appendf(nil, `{"header":"Sync failed","text":"Failure %d of the load"}`, i),
		}
	}

	start := time.Now()
	pub := clusterPublish(t, js, msgs, events/3)
	select {
	case <-pub.third:
	case <-pub.done:
		t.Fatalf("the load ended before a third was acknowledged: %v", pub.err)
	}
	leader := c.StreamLeader(dispatcher.StreamName)
	t.Logf("stopping node %d after %d of %d events acknowledged (NOTIFY leader: node %d, daemon on node %d)",
		victim, pub.acked.Load(), events, leader, c.ClientNode(clusterDaemonName))
	stopping := time.Now()
	c.Stop(victim)
	t.Logf("node %d stopped in %v; NOTIFY now led by node %d", victim, time.Since(stopping).Round(time.Millisecond), c.WaitStreamLeader(dispatcher.StreamName))
	<-pub.done
	if pub.err != nil {
		t.Fatalf("load: %v", pub.err)
	}
	t.Logf("load of %d events acknowledged in %v, the last %v of it without node %d (%d publishes retried, %d acks were duplicates, %d asynchronous errors)",
		events, time.Since(start).Round(time.Millisecond), time.Since(stopping).Round(time.Millisecond), victim, pub.retries.Load(), pub.duplicates.Load(), asyncErrs.Load())

	clusterWaitDelivered(t, js)
	t.Logf("every event acknowledged by every channel %v after the load started", time.Since(start).Round(time.Millisecond))
	clusterWaitCenters(t, d, js, want)

	if node := c.ClientNode(clusterDaemonName); node < 0 {
		t.Errorf("the daemon is not connected to a running node")
	}
	clusterCheckNoDeadLetters(t, js)
	clusterWaitReady(t, d)
	select {
	case code := <-d.exit:
		d.exit <- code // for the cleanup's stop
		t.Fatalf("the daemon exited with %d: %s", code, clusterLogTail(d.stderr.String(), 60))
	default:
	}
}

// clusterPutProfile registers u in the recipient directory through the admin API.
func clusterPutProfile(t *testing.T, d *daemon, u clusterUser) {
	t.Helper()
	putProfile(t, d.ep.HTTP, clusterAdminKey, u.account, u.user,
		fmt.Sprintf(`{"email":"user-%s-%s@example.com","name":"User %s","channels":{"email":true,"push":true}}`, u.account, u.user, u))
}

// clusterCheckReplicas checks that everything the daemon provisioned (its streams,
// the center's stream and buckets, the directory's bucket) and NOTIFY's channel
// consumers are replicated on all three nodes.
func clusterCheckReplicas(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var streams, buckets []string
	for name := range js.StreamNames(ctx).Name() {
		streams = append(streams, name)
	}
	for name := range js.KeyValueStoreNames(ctx).Name() {
		buckets = append(buckets, name)
	}
	for _, name := range []string{dispatcher.StreamName, dispatcher.DLQStreamName, center.StreamName} {
		if !slices.Contains(streams, name) {
			t.Errorf("no stream %s among %v", name, streams)
		}
	}
	for _, name := range []string{center.StateBucket, center.IDBucket, directory.DefaultBucket} {
		if !slices.Contains(buckets, name) {
			t.Errorf("no KV bucket %s among %v", name, buckets)
		}
	}
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas configured, cluster %+v; want 3 placed", name, info.Config.Replicas, info.Cluster)
		}
	}
	s, err := js.Stream(ctx, dispatcher.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for info := range s.ListConsumers(ctx).Info() {
		n++
		if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("consumer %s of %s: cluster %+v, want 3 replicas", info.Name, dispatcher.StreamName, info.Cluster)
		}
	}
	if n == 0 {
		t.Errorf("no consumers on %s", dispatcher.StreamName)
	}
	t.Logf("replicated on 3 nodes: streams %v, KV buckets %v, %d consumers of %s", streams, buckets, n, dispatcher.StreamName)
}

// clusterLoad is a load being published.
type clusterLoad struct {
	third      chan struct{} // closed when a third of the events are acknowledged
	done       chan struct{} // closed when every event is acknowledged or the load failed
	err        error         // why the load failed; read after done
	acked      atomic.Int64
	retries    atomic.Int64
	duplicates atomic.Int64
}

// clusterPublish publishes msgs from a few concurrent producers, each message until
// JetStream acknowledges it. A failed publish (a timeout, no responders while NOTIFY
// elects a leader, a reconnect) is retried with the same Nats-Msg-Id: if the first
// try was stored after all, the dedup window makes the retry a duplicate, so every
// event is in the stream exactly once.
func clusterPublish(t *testing.T, js jetstream.JetStream, msgs []*nats.Msg, third int) *clusterLoad {
	const producers = 8
	l := &clusterLoad{third: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(t.Context(), clusterDeadline)
	next := make(chan *nats.Msg)
	var wg sync.WaitGroup
	var thirdOnce, errOnce sync.Once
	for range producers {
		wg.Go(func() {
			for m := range next {
				for {
					actx, acancel := context.WithTimeout(ctx, 5*time.Second)
					ack, err := js.PublishMsg(actx, m, jetstream.WithExpectStream(dispatcher.StreamName))
					acancel()
					if err == nil {
						if ack.Duplicate {
							l.duplicates.Add(1)
						}
						if l.acked.Add(1) == int64(third) {
							thirdOnce.Do(func() { close(l.third) })
						}
						break
					}
					l.retries.Add(1)
					select {
					case <-ctx.Done():
						errOnce.Do(func() {
							l.err = fmt.Errorf("%s not acknowledged after %v, %d of %d acknowledged: %w",
								m.Header.Get(jetstream.MsgIDHeader), clusterDeadline, l.acked.Load(), len(msgs), err)
						})
						return
					case <-time.After(20 * time.Millisecond): // a failover takes a moment; do not spin
					}
				}
			}
		})
	}
	go func() {
		defer close(l.done)
		defer cancel()
		defer wg.Wait()
		defer close(next)
		for _, m := range msgs {
			select {
			case next <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return l
}

// clusterWaitDelivered waits until every channel consumer of NOTIFY has acknowledged
// every event: nothing is pending or waiting for an ack, so no redelivery can still
// change a center. Deliveries that were on their way when the node stopped (to the
// daemon's lost connection, or acked to a consumer leader that went away) come back
// only when their ack wait (30 s) runs out; the state is logged while waiting.
func clusterWaitDelivered(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	var last []string
	logged := time.Now()
	clusterWaitFor(t, "every event acknowledged by every channel", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, dispatcher.StreamName)
		if err != nil {
			last = []string{err.Error()}
			return false
		}
		last = last[:0]
		n := 0
		for info := range s.ListConsumers(ctx).Info() {
			n++
			if info.NumPending > 0 || info.NumAckPending > 0 {
				last = append(last, fmt.Sprintf("%s: %d pending, %d awaiting ack, %d redelivered", info.Name, info.NumPending, info.NumAckPending, info.NumRedelivered))
			}
		}
		if len(last) > 0 && time.Since(logged) > 10*time.Second {
			logged = time.Now()
			t.Logf("waiting for the channels: %s", strings.Join(last, "; "))
		}
		return n > 0 && len(last) == 0 && ctx.Err() == nil
	}, func() string { return strings.Join(last, "; ") })
}

// clusterWaitCenters waits until each user's center holds exactly the events sent to
// them, each once: the center API's pages, its unread count and the center stream's
// messages of the user all agree. A page may come from a replica a moment behind its
// leader (center/doc.go), so a difference is asked again until the deadline.
func clusterWaitCenters(t *testing.T, d *daemon, js jetstream.JetStream, want map[clusterUser][]string) {
	t.Helper()
	signer, err := token.NewSigner([]byte(clusterTestSecret))
	if err != nil {
		t.Fatal(err)
	}
	tokens := make(map[clusterUser]string, len(want))
	for u := range want {
		if tokens[u], err = signer.Mint(u.account, u.user, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	users := slices.SortedFunc(maps.Keys(want), func(a, b clusterUser) int { return strings.Compare(a.String(), b.String()) })
	var problems []string
	clusterWaitFor(t, "every event in its user's center exactly once", func() bool {
		problems = problems[:0]
		stored, err := clusterCenterMessages(t, js)
		if err != nil {
			problems = append(problems, err.Error())
			return false
		}
		for _, u := range users {
			problems = append(problems, clusterCenterProblems(t, d, tokens[u], u, want[u], stored[center.SubjectPrefix+"."+u.account+"."+u.user])...)
		}
		return len(problems) == 0
	}, func() string { return strings.Join(problems, "\n") })
}

// clusterCenterProblems compares u's center with want: its items page by page, its
// unread count and its messages in the center stream. Nil when they agree.
func clusterCenterProblems(t *testing.T, d *daemon, tok string, u clusterUser, want []string, stored uint64) []string {
	t.Helper()
	seen := make(map[string]int, len(want))
	var problems []string
	before := ""
	for pages := 0; ; pages++ {
		if pages > len(want) {
			return []string{fmt.Sprintf("%s: the pages do not end", u)}
		}
		url := d.ep.HTTP + "/api/v1/center?limit=200"
		if before != "" {
			url += "&before=" + before
		}
		status, body := clusterHTTP(t, http.MethodGet, url, tok, "")
		var page struct {
			Items []struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"items"`
			Unread int    `json:"unread"`
			Next   string `json:"next"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &page) != nil {
			return []string{fmt.Sprintf("%s: GET center: %d %s", u, status, body)}
		}
		if pages == 0 && page.Unread != len(want) {
			problems = append(problems, fmt.Sprintf("%s: unread %d, want %d", u, page.Unread, len(want)))
		}
		for _, it := range page.Items {
			seen[it.ID]++
			if it.Type != "add_error" {
				problems = append(problems, fmt.Sprintf("%s: item %s of type %q", u, it.ID, it.Type))
			}
		}
		if page.Next == "" {
			break
		}
		before = page.Next
	}
	var missing, doubled, foreign []string
	for _, id := range want {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range seen {
		switch {
		case !slices.Contains(want, id):
			foreign = append(foreign, id)
		case n > 1:
			doubled = append(doubled, fmt.Sprintf("%s x%d", id, n))
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%s: %d of %d events missing: %s", u, len(missing), len(want), clusterFirst(missing)))
	}
	if len(doubled) > 0 {
		slices.Sort(doubled)
		problems = append(problems, fmt.Sprintf("%s: %d events listed more than once: %s", u, len(doubled), clusterFirst(doubled)))
	}
	if len(foreign) > 0 {
		slices.Sort(foreign)
		problems = append(problems, fmt.Sprintf("%s: %d items of other users: %s", u, len(foreign), clusterFirst(foreign)))
	}
	if stored != uint64(len(want)) {
		problems = append(problems, fmt.Sprintf("%s: %d messages in stream %s, want %d", u, stored, center.StreamName, len(want)))
	}
	return problems
}

// clusterCenterMessages counts the center stream's messages per subject
// (center.<account>.<user>), as its leader holds them.
func clusterCenterMessages(t *testing.T, js jetstream.JetStream) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, center.StreamName)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(center.SubjectPrefix+".>"))
	if err != nil {
		return nil, err
	}
	return info.State.Subjects, nil
}

// clusterCheckNoDeadLetters checks that no delivery was dead-lettered: the disabled
// channels record skipped, and the center has no reason to give up.
func clusterCheckNoDeadLetters(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, dispatcher.DLQStreamName)
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	if info.State.Msgs == 0 {
		return
	}
	var letters []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && len(letters) < 10; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		letters = append(letters, fmt.Sprintf("%s id=%s reason=%s attempts=%s error=%q", m.Subject,
			m.Header.Get("Notify-Event-Id"), m.Header.Get("Notify-Reason"), m.Header.Get("Notify-Attempts"), m.Header.Get("Notify-Error")))
	}
	t.Errorf("%d dead letters, the first:\n%s", info.State.Msgs, strings.Join(letters, "\n"))
}

// clusterWaitReady waits until the daemon answers /readyz with 200.
func clusterWaitReady(t *testing.T, d *daemon) {
	t.Helper()
	var status int
	var body []byte
	clusterWaitFor(t, "/readyz 200", func() bool {
		status, body = clusterHTTP(t, http.MethodGet, d.ep.HTTP+"/readyz", "", "")
		return status == http.StatusOK
	}, func() string { return fmt.Sprintf("last answer %d %s", status, body) })
}

// clusterHTTP makes one request with a bearer credential (none when empty) and
// returns the status and body; a transport error is status 0 with the error as body.
func clusterHTTP(t *testing.T, method, url, cred, body string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// clusterWaitFor polls cond until it holds, failing the test after clusterDeadline
// with what the last attempt saw.
func clusterWaitFor(t *testing.T, what string, cond func() bool, detail func() string) {
	t.Helper()
	deadline := time.NewTimer(clusterDeadline)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("waited %v for %s; last seen:\n%s", clusterDeadline, what, detail())
		case <-tick.C:
		}
	}
}

// clusterFirst is the first few items of a list, for a failure message.
func clusterFirst(s []string) string {
	const n = 20
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
}

// clusterLogTail is the last n warning and error lines of the daemon's log.
func clusterLogTail(log string, n int) string {
	var lines []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
