package dispatcher

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection holds the layering of the design: cmd -> dispatcher -> channels
// -> events. events knows nothing of channels or the dispatcher, channels never import
// the dispatcher, and one channel never imports another.
func TestImportDirection(t *testing.T) {
	const module = "github.com/kommo-notify/notify/"
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkg, ok := strings.CutPrefix(p.ImportPath, module)
		if !ok {
			continue
		}
		checked++
		for _, dep := range p.Deps {
			d, ok := strings.CutPrefix(dep, module)
			if !ok {
				continue
			}
			if reason := forbidden(pkg, d); reason != "" {
				t.Errorf("%s imports %s: %s", pkg, d, reason)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d packages of the module listed", checked)
	}
}

func forbidden(pkg, dep string) string {
	layer := func(p string) string { return strings.SplitN(p, "/", 2)[0] }
	switch {
	case pkg == "channels/directory" && layer(dep) != "events":
		return "the recipient directory imports only events (and NATS), so channels and the router may import it"
	case layer(pkg) == "events" && layer(dep) != "events":
		return "events knows nothing of channels, the dispatcher or commands"
	case layer(pkg) == "channels" && (layer(dep) == "dispatcher" || layer(dep) == "cmd"):
		return "a channel never imports the dispatcher"
	case layer(pkg) == "channels" && layer(dep) == "channels" && isMedium(pkg) && isMedium(dep) && medium(pkg) != medium(dep):
		return "a channel never imports another channel"
	case layer(pkg) == "dispatcher" && layer(dep) == "cmd":
		return "nothing imports commands"
	case layer(pkg) == "dispatcher" && isMedium(dep):
		return "only cmd wires concrete channels"
	}
	return ""
}

// A medium is a channel implementation: channels/<name>, but not the test kits and
// not the recipient directory, a library that channels and the router share.
func isMedium(p string) bool {
	parts := strings.Split(p, "/")
	return len(parts) >= 2 && parts[0] == "channels" && !strings.HasSuffix(parts[1], "test") && parts[1] != "directory"
}

func medium(p string) string { return strings.Split(p, "/")[1] }
