package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/center"
	"github.com/kommo-notify/notify/dispatcher/httpapi"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/token"
)

var _ httpapi.Center = (*center.Store)(nil)

// centerFixture is the API with a real notification center behind it.
type centerFixture struct {
	*fixture
	store  *center.Store
	signer *token.Signer
}

func newCenterFixture(t *testing.T, withCenter bool) *centerFixture {
	t.Helper()
	signer, err := token.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	cf := &centerFixture{signer: signer}
	cf.fixture = newFixture(t, httpapi.Config{Users: signer}, func(f *fixture, cfg *httpapi.Config) {
		if !withCenter {
			return
		}
		if cf.store, err = center.New(t.Context(), center.Config{Conn: f.nc, BaseURL: "https://crm.example.com"}); err != nil {
			t.Fatal(err)
		}
		cfg.Center = cf.store
	})
	return cf
}

func (cf *centerFixture) token(t *testing.T, account, user string) string {
	t.Helper()
	tok, err := cf.signer.Mint(account, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// add stores an add_error with id for account/user, as the router would.
func (cf *centerFixture) add(t *testing.T, account, user, id string) {
	t.Helper()
	p, _, err := events.Validate(events.AddError, []byte(`{"text":"`+id+`","link":"/leads/detail/1"}`), cf.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events.Event{ID: id, Address: events.Address{Account: account, User: user, Type: events.AddError}, Payload: p, Body: body}
	if err := cf.store.Send(t.Context(), &channels.Delivery{Event: ev, User: user, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
}

// as sends a request with account/user's token.
func (cf *centerFixture) as(t *testing.T, account, user, method, path, body string) response {
	t.Helper()
	return cf.request(t, method, path, map[string]string{"Authorization": "Bearer " + cf.token(t, account, user)}, body)
}

type centerPage struct {
	Items  []center.Item `json:"items"`
	Unread int64         `json:"unread"`
	Next   *string       `json:"next"`
}

func decode[T any](t *testing.T, r response, status int) T {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return v
}

func itemIDs(items []center.Item) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return strings.Join(out, ",")
}

func TestCenterAPI(t *testing.T) {
	cf := newCenterFixture(t, true)
	for _, id := range []string{"a", "b", "c"} {
		cf.add(t, "acme", "42", id)
	}
	cf.add(t, "acme", "43", "theirs")
	cf.add(t, "globex", "42", "a") // the same user id and event id in another account

	page := decode[centerPage](t, cf.as(t, "acme", "42", "GET", "/api/v1/center", ""), http.StatusOK)
	if itemIDs(page.Items) != "c,b,a" || page.Unread != 3 || page.Next == nil || *page.Next != "" {
		t.Fatalf("first page %+v", page)
	}
	if l := page.Items[0].Links.Click; l != "https://crm.example.com/leads/detail/1" {
		t.Errorf("click %q", l)
	}

	page = decode[centerPage](t, cf.as(t, "acme", "42", "GET", "/api/v1/center?limit=2", ""), http.StatusOK)
	if itemIDs(page.Items) != "c,b" || *page.Next == "" {
		t.Fatalf("page of 2: %+v", page)
	}
	page = decode[centerPage](t, cf.as(t, "acme", "42", "GET", "/api/v1/center?limit=2&before="+*page.Next, ""), http.StatusOK)
	if itemIDs(page.Items) != "a" || *page.Next != "" {
		t.Fatalf("second page: %+v", page)
	}

	steps := []struct {
		name         string
		method, path string
		body         string
		status       int
		unread       int64
	}{
		{"unread", "GET", "/api/v1/center/unread", "", 200, 3},
		{"read one, another user's and an unknown id", "POST", "/api/v1/center/read", `{"ids":["a","theirs","nope"]}`, 200, 2},
		{"read it again", "POST", "/api/v1/center/read", `{"ids":["a"]}`, 200, 2},
		{"delete an unread one", "DELETE", "/api/v1/center/b", "", 204, 1},
		{"delete it again", "DELETE", "/api/v1/center/b", "", 404, 1},
		{"delete another user's", "DELETE", "/api/v1/center/theirs", "", 404, 1},
		{"delete an id that cannot be", "DELETE", "/api/v1/center/" + strings.Repeat("x", 200), "", 404, 1},
		{"read nothing", "POST", "/api/v1/center/read", `{"ids":[]}`, 200, 1},
		{"read all", "POST", "/api/v1/center/read", `{"all":true}`, 200, 0},
		{"unread after all", "GET", "/api/v1/center/unread", "", 200, 0},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := cf.as(t, "acme", "42", s.method, s.path, s.body)
			switch s.status {
			case 200:
				if got := decode[struct{ Unread int64 }](t, r, 200); got.Unread != s.unread {
					t.Errorf("unread %d, want %d", got.Unread, s.unread)
				}
			case 204:
				if r.status != 204 || len(r.body) != 0 {
					t.Errorf("status %d, body %q; want 204", r.status, r.body)
				}
			default:
				if r.status != s.status || r.errorBody(t).Code != events.CodeNotFound {
					t.Errorf("status %d, body %s; want %d not_found", r.status, r.body, s.status)
				}
			}
		})
	}

	// The others' items are untouched.
	for _, u := range [][3]string{{"acme", "43", "theirs"}, {"globex", "42", "a"}} {
		page := decode[centerPage](t, cf.as(t, u[0], u[1], "GET", "/api/v1/center", ""), http.StatusOK)
		if itemIDs(page.Items) != u[2] || page.Unread != 1 || page.Items[0].Read {
			t.Errorf("%s/%s: %+v", u[0], u[1], page)
		}
	}
}

func TestCenterAuthentication(t *testing.T) {
	cf := newCenterFixture(t, true)
	forger, _ := token.NewSigner([]byte("another secret, another secret!!"))
	forged, _ := forger.Mint("acme", "42", time.Hour)
	creds := map[string]string{
		"no credential":               "",
		"an API key":                  "Bearer " + anyKey,
		"an admin key":                "Bearer " + adminKey,
		"a forged token":              "Bearer " + forged,
		"a token in the wrong scheme": "Basic " + cf.token(t, "acme", "42"),
	}
	routes := [][2]string{{"GET", "/api/v1/center"}, {"GET", "/api/v1/center/unread"}, {"POST", "/api/v1/center/read"}, {"DELETE", "/api/v1/center/x"}}
	for name, cred := range creds {
		for _, route := range routes {
			t.Run(name+" "+route[0]+" "+route[1], func(t *testing.T) {
				r := cf.request(t, route[0], route[1], map[string]string{"Authorization": cred}, `{"all":true}`)
				if r.status != http.StatusUnauthorized || r.errorBody(t).Code != events.CodeUnauthorized || r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("status %d, body %s", r.status, r.body)
				}
			})
		}
	}
}

func TestCenterRefusesBadRequests(t *testing.T) {
	cf := newCenterFixture(t, true)
	tooMany := make([]string, httpapi.MaxReadIDs+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("%q", fmt.Sprint(i))
	}
	cases := []struct {
		name         string
		method, path string
		contentType  string
		body         string
		status       int
		code, field  string
	}{
		{"limit 0", "GET", "/api/v1/center?limit=0", "", "", 400, events.CodeInvalidField, "limit"},
		{"limit 201", "GET", "/api/v1/center?limit=201", "", "", 400, events.CodeInvalidField, "limit"},
		{"limit not a number", "GET", "/api/v1/center?limit=ten", "", "", 400, events.CodeInvalidField, "limit"},
		{"cursor not ours", "GET", "/api/v1/center?before=abc", "", "", 400, events.CodeInvalidField, "before"},
		{"cursor 0", "GET", "/api/v1/center?before=0", "", "", 400, events.CodeInvalidField, "before"},
		{"read: malformed", "POST", "/api/v1/center/read", "", `{"ids":[`, 400, events.CodeInvalidJSON, ""},
		{"read: an array", "POST", "/api/v1/center/read", "", `["a"]`, 400, events.CodeInvalidJSON, ""},
		{"read: nothing asked", "POST", "/api/v1/center/read", "", `{}`, 400, events.CodeInvalidField, "ids"},
		{"read: ids and all", "POST", "/api/v1/center/read", "", `{"ids":["a"],"all":true}`, 400, events.CodeInvalidField, "ids"},
		{"read: ids not an array", "POST", "/api/v1/center/read", "", `{"ids":"a"}`, 400, events.CodeInvalidField, "ids"},
		{"read: an id with a space", "POST", "/api/v1/center/read", "", `{"ids":["ok","not ok"]}`, 400, events.CodeInvalidField, "ids[1]"},
		{"read: too many ids", "POST", "/api/v1/center/read", "", `{"ids":[` + strings.Join(tooMany, ",") + `]}`, 400, events.CodeInvalidField, "ids"},
		{"read: not JSON", "POST", "/api/v1/center/read", "text/plain", `ids=a`, 415, events.CodeUnsupportedMediaType, ""},
		{"an item with GET", "GET", "/api/v1/center/x", "", "", 405, events.CodeNotFound, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"Authorization": "Bearer " + cf.token(t, "acme", "42")}
			if tc.contentType != "" {
				h["Content-Type"] = tc.contentType
			}
			r := cf.request(t, tc.method, tc.path, h, tc.body)
			e := r.errorBody(t)
			if r.status != tc.status || e.Code != tc.code || e.Field != tc.field {
				t.Errorf("status %d, %+v; want %d %s field %q", r.status, e, tc.status, tc.code, tc.field)
			}
		})
	}
}

func TestCenterRoutesWithoutACenter(t *testing.T) {
	cf := newCenterFixture(t, false)
	r := cf.as(t, "acme", "42", "GET", "/api/v1/center", "")
	if r.status != http.StatusServiceUnavailable || r.errorBody(t).Code != events.CodeUnavailable {
		t.Errorf("status %d, body %s", r.status, r.body)
	}
	if r := cf.request(t, "GET", "/api/v1/center", map[string]string{"Authorization": ""}, ""); r.status != http.StatusUnauthorized {
		t.Errorf("without a token: status %d", r.status)
	}
}
