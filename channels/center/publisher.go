package center

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publisher sends the center's JetStream publishes (items, id claims, state
// updates) in gathered writes. Each add waits for three acknowledgements in a row,
// and a dispatcher runs many adds at once; sent as they come, each publish is a
// write of its own for the client, and a read and an acknowledgement written back
// for the server, which cost more than storing the message. So publishes go out in
// batches, one batch out at a time: those that come while one is out wait for it
// to be answered and go out together, which its last acknowledgement starts. An
// idle store sends at once; a busy one sends in few large writes. A batch that is
// not answered within batchGate does not hold up the next. The center's frames
// (post) ride along in the same queue, so they leave in the writes of the batches
// and in the order they came.
//
// Each publish has a reply subject of its own under one subscription made once,
// and its caller waits for its acknowledgement, read without encoding/json when it
// is a PubAck. The messages are those of a jetstream publish or a KV update:
// readers see no difference.
type publisher struct {
	nc    *nats.Conn
	inbox string // the acknowledgement of publish n comes to <inbox>n
	log   *slog.Logger

	subOnce sync.Once
	subErr  error

	mu      sync.Mutex
	tokens  uint64              // the last token given
	waiting map[string]*publish // by token, until answered or given up
	queue   []*publish          // waiting for the batch out to be answered
	batch   uint64              // the batch out (or the last one)
	left    int                 // its publishes not answered yet; 0: none is out
	gate    *time.Timer         // opens the next batch when the one out is late
}

// publish is one message waiting for its acknowledgement, or (token empty) a core
// message that rides along with the next batch: a frame for the user's tabs.
type publish struct {
	msg   *nats.Msg
	token string
	batch uint64
	done  chan ackResult // buffered: the answer never waits for the caller
}

// ackResult is what came back for a publish.
type ackResult struct {
	msg *nats.Msg
	err error
}

const (
	// batchGate is how long a batch out may hold back the next one.
	batchGate = 20 * time.Millisecond
	// ackTimeout bounds the wait for an acknowledgement when ctx has no deadline,
	// as a jetstream publish does.
	ackTimeout = 5 * time.Second
	// noResponderRetries and noResponderWait: a stream without a leader for a
	// moment (an election) answers no-responders; the publish is tried again.
	noResponderRetries = 2
	noResponderWait    = 250 * time.Millisecond
)

func newPublisher(nc *nats.Conn, log *slog.Logger) *publisher {
	p := &publisher{nc: nc, inbox: nc.NewInbox() + ".", log: log, waiting: make(map[string]*publish)}
	p.gate = time.AfterFunc(time.Hour, p.late)
	p.gate.Stop()
	return p
}

// publish stores data on subject and returns its stream seq. expect, when not nil,
// is the seq the subject's newest message must have (0: none), checked by the
// stream (Nats-Expected-Last-Subject-Sequence): a KV update with a revision, or a
// conditional publish. A refusal is the stream's *jetstream.APIError.
func (p *publisher) publish(ctx context.Context, subject string, data []byte, expect *uint64) (uint64, error) {
	p.subOnce.Do(func() {
		_, p.subErr = p.nc.Subscribe(p.inbox+"*", p.acknowledged)
	})
	if p.subErr != nil {
		return 0, p.subErr
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ackTimeout)
		defer cancel()
	}
	for try := 0; ; try++ {
		msg := &nats.Msg{Subject: subject, Data: data}
		if expect != nil {
			msg.Header = nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(*expect, 10)}}
		}
		seq, err := p.request(ctx, msg)
		if !errors.Is(err, nats.ErrNoResponders) || try == noResponderRetries {
			return seq, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(noResponderWait):
		}
	}
}

// request sends msg in the next batch and waits for its acknowledgement.
func (p *publisher) request(ctx context.Context, msg *nats.Msg) (uint64, error) {
	pub := &publish{msg: msg, done: make(chan ackResult, 1)}
	p.mu.Lock()
	p.tokens++
	pub.token = strconv.FormatUint(p.tokens, 10)
	msg.Reply = p.inbox + pub.token
	p.waiting[pub.token] = pub
	p.enqueueLocked(pub)
	p.mu.Unlock()
	var r ackResult
	select {
	case r = <-pub.done:
	case <-ctx.Done():
		// Give up, unless the answer came meanwhile: then it is the one kept.
		p.answered(pub.token, ackResult{err: ctx.Err()})
		r = <-pub.done
	}
	if r.err != nil {
		return 0, r.err
	}
	return parseAck(r.msg)
}

// post sends a core message (no acknowledgement) with the next batch when one is
// out, else at once: the center's frames follow its writes and share their writes
// too. Posts and publishes leave in the order they came.
func (p *publisher) post(subject string, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enqueueLocked(&publish{msg: &nats.Msg{Subject: subject, Data: data}})
}

// enqueueLocked sends pub at once when no batch is out, else queues it for the next.
func (p *publisher) enqueueLocked(pub *publish) {
	p.queue = append(p.queue, pub)
	if p.left == 0 {
		p.sendLocked()
	}
}

// sendLocked makes the queue the batch out and writes it, while no batch is out
// and anything waits. Only publishes with a token wait for an acknowledgement; a
// batch without any is written and done. A publish the connection refuses is
// answered with that error. The writes are made under p.mu so that nothing
// overtakes them.
func (p *publisher) sendLocked() {
	for p.left == 0 && len(p.queue) > 0 {
		batch := p.queue
		p.queue = nil
		p.batch++
		for _, pub := range batch {
			if pub.token != "" {
				if p.waiting[pub.token] != pub {
					continue // given up on while it waited
				}
				pub.batch = p.batch
				p.left++
			}
			err := p.nc.PublishMsg(pub.msg)
			switch {
			case err == nil:
			case pub.token != "":
				p.answerLocked(pub, ackResult{err: err})
			default: // a frame: lost, which costs nothing lasting (see Store.publish)
				p.log.Warn("publish center frame", "subject", pub.msg.Subject, "error", err)
			}
		}
		if p.left > 0 {
			p.gate.Reset(batchGate)
		}
	}
}

// answered gives the publish with token its answer, unless it has one already, and
// counts it in its batch. The answer that completes the batch out sends the next.
func (p *publisher) answered(token string, r ackResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pub := p.waiting[token]; pub != nil {
		p.answerLocked(pub, r)
		if p.left == 0 {
			p.sendLocked()
		}
	}
}

// answerLocked gives pub its answer and counts it in its batch.
func (p *publisher) answerLocked(pub *publish, r ackResult) {
	delete(p.waiting, pub.token)
	if pub.batch == p.batch && p.left > 0 {
		p.left--
		if p.left == 0 {
			p.gate.Stop()
		}
	}
	pub.done <- r // buffered, and answered once
}

// late sends the next batch when the one out was not answered within batchGate;
// its answers still reach their callers when they come.
func (p *publisher) late() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left > 0 {
		p.left = 0
		p.sendLocked()
	}
}

// acknowledged passes an acknowledgement to its publish.
func (p *publisher) acknowledged(m *nats.Msg) {
	p.answered(m.Subject[len(p.inbox):], ackResult{msg: m})
}

// parseAck reads an acknowledgement: the seq of a PubAck, the stream's error, or
// nats.ErrNoResponders for the server's no-responders status (no stream, or no
// leader for a moment). A PubAck is read without encoding/json: it is
// {"stream":"<name>","seq":<n>} with maybe more fields after.
func parseAck(m *nats.Msg) (uint64, error) {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return 0, nats.ErrNoResponders
		}
		return 0, fmt.Errorf("jetstream: status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
	}
	if !bytes.Contains(m.Data, []byte(`"error"`)) {
		if i := bytes.Index(m.Data, []byte(`,"seq":`)); i >= 0 {
			digits := m.Data[i+len(`,"seq":`):]
			n := 0
			for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
				n++
			}
			if seq, err := strconv.ParseUint(string(digits[:n]), 10, 64); err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	var ack struct {
		Error *jetstream.APIError `json:"error"`
		Seq   uint64              `json:"seq"`
	}
	if err := json.Unmarshal(m.Data, &ack); err != nil {
		return 0, fmt.Errorf("jetstream: acknowledgement: %w", err)
	}
	if ack.Error != nil {
		return 0, ack.Error
	}
	if ack.Seq == 0 {
		return 0, fmt.Errorf("jetstream: acknowledgement without a seq: %s", m.Data)
	}
	return ack.Seq, nil
}
