package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type eventStatus struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Account    string `json:"account"`
	Deliveries []struct {
		Channel  string `json:"channel"`
		User     string `json:"user"`
		State    string `json:"state"`
		Attempts int    `json:"attempts"`
		Reason   string `json:"reason"`
		Error    string `json:"error"`
	} `json:"deliveries"`
}

// states is channel/user -> state, with the reason after a colon when there is one.
func (s eventStatus) states() map[string]string {
	out := map[string]string{}
	for _, d := range s.Deliveries {
		v := d.State
		if d.Reason != "" {
			v += ":" + d.Reason
		}
		out[d.Channel+"/"+d.User] = v
	}
	return out
}

// getStatus reads GET /api/v1/events/{id} with key.
func getStatus(t *testing.T, base, key, id string) (int, eventStatus) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/v1/events/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st eventStatus
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("status body %s: %v", b, err)
		}
	}
	return resp.StatusCode, st
}

// waitStatus polls the event's status until cond holds.
func waitStatus(t *testing.T, base, key, id string, cond func(eventStatus) bool) eventStatus {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		code, st := getStatus(t, base, key, id)
		if code == http.StatusOK && cond(st) {
			return st
		}
		select {
		case <-deadline:
			t.Fatalf("status of %s: %d %+v", id, code, st)
		case <-tick.C:
		}
	}
}

// The daemon answers "why did this user not get it?": an add_error accepted over HTTP
// is queued on every channel at once, then sent by the relay and the center and
// skipped by the channels that are not configured.
func TestDaemonReportsDeliveryStatus(t *testing.T) {
	env := embeddedEnv(t)
	env["NOTIFY_API_KEYS"] = "acme:acme-key,other:other-key"
	d := startDaemon(t, env)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, d.ep.HTTP+"/api/v1/notify/acme/42/add_error",
		strings.NewReader(`{"header":"Export failed","text":"The export of 1,024 leads failed"}`))
	req.Header.Set("Authorization", "Bearer acme-key")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var accepted struct{ ID string }
	err = json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish: %d %v", resp.StatusCode, err)
	}

	want := map[string]string{
		"relay/42":  "sent",
		"center/42": "sent",
		"email/42":  "skipped:channel_disabled",
		"push/42":   "skipped:channel_disabled",
	}
	st := waitStatus(t, d.ep.HTTP, "acme-key", accepted.ID, func(st eventStatus) bool {
		got := st.states()
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return len(got) == len(want)
	})
	if st.ID != accepted.ID || st.Type != "add_error" || st.Account != "acme" {
		t.Errorf("status %+v", st)
	}
	if code, _ := getStatus(t, d.ep.HTTP, "other-key", accepted.ID); code != http.StatusNotFound {
		t.Errorf("another account's key: %d, want 404", code)
	}
}
