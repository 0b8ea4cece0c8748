package main

// Checks of the deployment files themselves: the compose file against the compose
// specification and the repository, the dispatcher's compose environment against the
// daemon's configuration, the Prometheus files against promtool, the dashboard's
// shape, and the demo FCM key against the emulator.

import (
	"cmp"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/kommo-notify/notify/channels/push/fcmemu"
)

// loadCompose loads docker-compose.yml as `docker compose` does: interpolated,
// env_files resolved into the environment, paths made absolute.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	dir, err := filepath.Abs(repoFile())
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, composeFile)}},
		Environment: types.Mapping{}, // nothing from the developer's shell
	})
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return project
}

// dockerfileStages are the names of the stages of a Dockerfile (FROM ... AS name).
func dockerfileStages(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	for _, m := range regexp.MustCompile(`(?im)^FROM\s+\S+(?:\s+\S+)*?\s+AS\s+(\S+)\s*$`).FindAllStringSubmatch(string(b), -1) {
		stages = append(stages, m[1])
	}
	return stages
}

// inside reports whether path is within dir.
func inside(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// The compose file loads with the compose specification's loader, and everything it
// references exists in the repository: build contexts, Dockerfiles and their
// targets, bind-mounted files, env_files. Third-party images are pinned, ports are
// published on the loopback only, and depends_on waits for health only where there
// is a healthcheck.
func TestComposeFileLoadsAndReferencesExist(t *testing.T) {
	project := loadCompose(t)
	root := project.WorkingDir

	wantServices := []string{"dispatcher", "fcm-emulator", "grafana", "mailpit", "nats", "nats-exporter", "prometheus"}
	if got := slices.Sorted(maps.Keys(project.Services)); !slices.Equal(got, wantServices) {
		t.Errorf("services %v, want %v", got, wantServices)
	}
	exists := func(service, what, path string, dir bool) {
		t.Helper()
		if !inside(root, path) {
			t.Errorf("%s: %s %s is outside the repository", service, what, path)
			return
		}
		info, err := os.Stat(path)
		switch {
		case err != nil:
			t.Errorf("%s: %s: %v", service, what, err)
		case info.IsDir() != dir:
			t.Errorf("%s: %s %s: directory %v, want %v", service, what, path, info.IsDir(), dir)
		}
	}
	for name, svc := range project.Services {
		if svc.Build != nil {
			exists(name, "build context", svc.Build.Context, true)
			dockerfile := filepath.Join(svc.Build.Context, cmp.Or(svc.Build.Dockerfile, "Dockerfile"))
			exists(name, "Dockerfile", dockerfile, false)
			if stages := dockerfileStages(t, dockerfile); svc.Build.Target != "" && !slices.Contains(stages, svc.Build.Target) {
				t.Errorf("%s: build target %q is not a stage of %s (%v)", name, svc.Build.Target, dockerfile, stages)
			}
		} else if i := strings.LastIndex(svc.Image, ":"); i < 0 || i < strings.LastIndex(svc.Image, "/") || svc.Image[i+1:] == "latest" {
			t.Errorf("%s: image %q is not pinned to a version", name, svc.Image)
		}
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind {
				info, err := os.Stat(v.Source)
				if err != nil {
					t.Errorf("%s: bind mount: %v", name, err)
					continue
				}
				exists(name, "bind mount", v.Source, info.IsDir())
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s is writable: mount the repository read-only", name, v.Source)
				}
			}
		}
		for _, f := range svc.EnvFiles {
			exists(name, "env_file", f.Path, false)
		}
		for _, p := range svc.Ports {
			if p.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d is published on %q: publish on 127.0.0.1, the demo secrets are public", name, p.Target, p.HostIP)
			}
		}
		for dep, cond := range svc.DependsOn {
			if cond.Condition == types.ServiceConditionHealthy {
				if hc := project.Services[dep].HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
					t.Errorf("%s waits for %s to be healthy, and %s has no healthcheck", name, dep, dep)
				}
			}
		}
	}

	// Prometheus and Grafana reach services of this file.
	for _, file := range []string{prometheusFile, "deploy/grafana/provisioning/datasources/prometheus.yml"} {
		b, err := os.ReadFile(repoFile(file))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?:"|//)([a-z][a-z0-9-]*):\d+`).FindAllStringSubmatch(string(b), -1) {
			if _, ok := project.Services[m[1]]; !ok && m[1] != "localhost" {
				t.Errorf("%s: %s is not a service of %s", file, m[1], composeFile)
			}
		}
	}
}

// The dispatcher's compose environment is a configuration the daemon accepts, with
// NATS, SMTP and FCM on services of the file, JSON logs, and a service-account key
// whose token endpoint is the emulator's.
func TestComposeDispatcherConfiguration(t *testing.T) {
	project := loadCompose(t)
	svc := project.Services["dispatcher"]
	env := map[string]string{}
	for k, v := range svc.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	// The key file as the container sees it, read from the repository.
	credentials := env["FCM_CREDENTIALS_FILE"]
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == credentials {
			env["FCM_CREDENTIALS_FILE"] = v.Source
		}
	}
	if env["FCM_CREDENTIALS_FILE"] == credentials {
		t.Fatalf("FCM_CREDENTIALS_FILE %q is not a file mounted into the dispatcher", credentials)
	}
	cfg, err := parseConfig(nil, envFunc(env), io.Discard)
	if err != nil {
		t.Fatalf("the daemon refuses the compose environment: %v", err)
	}
	if cfg.LogFormat != "json" {
		t.Errorf("NOTIFY_LOG_FORMAT %q, want json", cfg.LogFormat)
	}
	if cfg.JWTSecret == "" || cfg.APIKeys == "" || cfg.AdminKeys == "" {
		t.Error("the dispatcher generates its secrets: give NOTIFY_JWT_SECRET, NOTIFY_API_KEYS and NOTIFY_ADMIN_KEYS, it runs read-only")
	}
	service := func(setting, rawURL string) string {
		t.Helper()
		u, err := url.Parse(rawURL)
		if err != nil {
			t.Errorf("%s: %v", setting, err)
			return ""
		}
		host, port, _ := net.SplitHostPort(u.Host)
		other, ok := project.Services[host]
		if !ok {
			t.Errorf("%s %s: %s is not a service of %s", setting, rawURL, host, composeFile)
			return ""
		}
		if !slices.Contains(svc.GetDependencies(), host) {
			t.Errorf("the dispatcher does not depend on %s (%s)", host, setting)
		}
		if other.HealthCheck == nil {
			t.Errorf("%s has no healthcheck", host)
		}
		return port
	}
	service("NATS_URL", cfg.NATSURL)
	service("SMTP_URL", "smtp://"+cfg.smtp.Addr())
	if port := service("FCM_ENDPOINT", cfg.FCMEndpoint); port != "" {
		if !slices.ContainsFunc(project.Services["fcm-emulator"].Command, func(arg string) bool { return strings.HasSuffix(arg, ":"+port) }) {
			t.Errorf("the emulator's command %v does not listen on port %s of FCM_ENDPOINT", project.Services["fcm-emulator"].Command, port)
		}
	}
	endpoint, _ := url.Parse(cfg.FCMEndpoint)
	if tu, err := url.Parse(cfg.fcm.TokenURI); err != nil || tu.Host != endpoint.Host || tu.Path != "/token" {
		t.Errorf("the key's token_uri %q is not the emulator's %s/token", cfg.fcm.TokenURI, cfg.FCMEndpoint)
	}
	if cfg.FCMProjectID != cfg.fcm.ProjectID {
		t.Errorf("FCM_PROJECT_ID %q, the key's project %q", cfg.FCMProjectID, cfg.fcm.ProjectID)
	}
}

// promtool is the path of promtool. Without it the test is skipped on a developer
// machine and fails in CI, which installs it (.ci/run).
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (apt-get install -y prometheus): CI must check the Prometheus files")
		}
		t.Skip("promtool is not installed (apt-get install -y prometheus); skipping")
	}
	return path
}

func TestPromtoolAcceptsThePrometheusFiles(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "config", repoFile(prometheusFile)},
		{"check", "rules", repoFile(alertsFile)},
		{"test", "rules", repoFile(alertTestsFile)},
	} {
		out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// The dashboard is valid JSON, every panel queries the Prometheus data source through
// the $datasource variable with at least one target, and the panels do not overlap.
func TestDashboardIsWellFormed(t *testing.T) {
	dash := loadDashboard(t)
	if dash.UID == "" || dash.Title == "" {
		t.Error("the dashboard has no uid or title")
	}
	dsVariable := ""
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" && variableQuery(v.Query) == "prometheus" {
			dsVariable = "${" + v.Name + "}"
		}
	}
	if dsVariable == "" {
		t.Fatal("no data source variable of type prometheus")
	}
	isVariable := func(ds *grafanaDS) bool {
		return ds != nil && ds.Type == "prometheus" && (ds.UID == dsVariable || ds.UID == "$"+strings.Trim(dsVariable, "${}"))
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	panels := dash.dataPanels()
	if len(panels) == 0 {
		t.Fatal("no panels")
	}
	for _, p := range dash.Panels {
		if p.Type == "row" && p.GridPos != nil {
			panels = append(panels, grafanaPanel{ID: p.ID, Type: p.Type, Title: p.Title, GridPos: p.GridPos})
		}
	}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d is not unique", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
			continue
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap", other, p.Title)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if !isVariable(p.Datasource) {
			t.Errorf("panel %q: datasource %+v, want the prometheus variable %s", p.Title, p.Datasource, dsVariable)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no target", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: target %q with expr %q: want an expression and a unique refId", p.Title, tg.RefID, tg.Expr)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && !isVariable(tg.Datasource) {
				t.Errorf("panel %q target %s: datasource %+v", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
}

// The local stack's service-account key is one the emulator accepts, as the compose
// file runs it (any account, project notify-dev): a push goes through with it. Only
// its token_uri is moved from the compose network to this test's emulator.
func TestLocalDemoFCMKeyPushesThroughTheEmulator(t *testing.T) {
	const project = "notify-dev"
	emu := fcmemu.New(fcmemu.Options{Project: project})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)

	b, err := os.ReadFile(repoFile("deploy/local-demo/fcm-service-account.json"))
	if err != nil {
		t.Fatal(err)
	}
	var key map[string]any
	if err := json.Unmarshal(b, &key); err != nil {
		t.Fatal(err)
	}
	key["token_uri"] = srv.URL + "/token"
	b, err = json.Marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "fcm.json")
	if err := os.WriteFile(keyFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	env := embeddedEnv(t)
	env["FCM_CREDENTIALS_FILE"] = keyFile
	env["FCM_ENDPOINT"] = srv.URL
	env["FCM_PROJECT_ID"] = project
	env["NOTIFY_ADMIN_KEYS"] = "admin-key"
	d := startDaemon(t, env)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, d.ep.HTTP+"/api/v1/accounts/demo/users/1/devices",
		strings.NewReader(`{"token":"local-demo-device","platform":"android"}`))
	req.Header.Set("Authorization", "Bearer admin-key")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register a device: %s", resp.Status)
	}
	publishUntil(t, d, "notify.demo.1.add_error", `{"header":"Error","text":"pushed with the demo key"}`,
		"demo-push", "push", func() bool { return len(emu.Messages()) > 0 })
	if got := emu.Messages()[0].Message; got.Token != "local-demo-device" {
		t.Errorf("pushed %+v", got)
	}
}

// deploy/ holds configuration only (STYLE.md): no Go.
func TestDeployHoldsNoGo(t *testing.T) {
	err := filepath.WalkDir(repoFile("deploy"), func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(path, ".go") {
			t.Errorf("%s: deploy/ holds no Go", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
