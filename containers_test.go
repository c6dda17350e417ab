package main

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// There is no Docker engine to run the images here, so these tests check what can be checked
// without one: that the compose file means what it should and names only variables the service
// reads, and that the binary the Dockerfile builds, built the same way, serves with the compose
// file's environment against a MySQL-compatible server.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Volumes []string `yaml:"volumes"`
	Ports   []string `yaml:"ports"`
	CPUs    string   `yaml:"cpus"`
}

// composeVariable is compose's ${NAME}, ${NAME:-default} or ${NAME:?error}.
var composeVariable = regexp.MustCompile(`\$\{([A-Z_]+)(?:(:-|:\?)([^}]*))?\}`)

// interpolate applies compose's variables to s with only those in set set, as `docker compose up`
// would: a required one (${NAME:?error}) that is not set is an error, and compose starts nothing.
func interpolate(s string, set map[string]string) (string, error) {
	var missing error
	out := composeVariable.ReplaceAllStringFunc(s, func(m string) string {
		parts := composeVariable.FindStringSubmatch(m)
		name, op, arg := parts[1], parts[2], parts[3]
		if v := set[name]; v != "" {
			return v
		}
		if op == ":?" {
			missing = fmt.Errorf("%s: %s", name, arg)
		}
		if op == ":-" {
			return arg
		}
		return ""
	})
	return out, missing
}

// composeSecret is the JWT_SECRET the compose file's tests start it with.
var composeSecret = map[string]string{"JWT_SECRET": testSecret}

// composeEnvironment is the app's environment as compose passes it with the variables in set.
func composeEnvironment(t *testing.T, app composeService, set map[string]string) (map[string]string, error) {
	t.Helper()
	env := map[string]string{}
	var errs []error
	for k, v := range app.Environment {
		value, err := interpolate(v, set)
		env[k] = value
		errs = append(errs, err)
	}
	return env, errors.Join(errs...)
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	return c
}

func TestComposeFile(t *testing.T) {
	c := readCompose(t)
	db, app := c.Services["mysql"], c.Services["app"]
	if !strings.HasPrefix(db.Image, "mysql:8") {
		t.Errorf("database image %q, want MySQL 8", db.Image)
	}
	if db.Healthcheck == nil || len(db.Healthcheck.Test) == 0 {
		t.Error("the database has no health check")
	}
	if len(db.Volumes) == 0 || c.Volumes[strings.Split(db.Volumes[0], ":")[0]] == nil && !strings.Contains(strings.Join(db.Volumes, ""), "mysql-data") {
		t.Errorf("the database's data is not on a named volume: %v", db.Volumes)
	}
	if _, ok := c.Volumes["mysql-data"]; !ok {
		t.Error("no named volume mysql-data")
	}
	if app.Build == nil {
		t.Error("the app is not built from the Dockerfile")
	}
	if app.DependsOn["mysql"].Condition != "service_healthy" {
		t.Errorf("the app does not wait for a healthy database: %+v", app.DependsOn)
	}
	// Go's runtime sizes GOMAXPROCS from the container's CPU limit: one CPU, one P.
	if got, _ := interpolate(app.CPUs, nil); got != "1" {
		t.Errorf("the app's CPU limit is %q, want 1", got)
	}

	var known []string
	for _, v := range variables {
		known = append(known, v.Name)
	}
	for name := range app.Environment {
		if !slices.Contains(known, name) {
			t.Errorf("the compose file sets %s, which the service does not read", name)
		}
	}
	for _, name := range known {
		if _, ok := app.Environment[name]; !ok {
			t.Errorf("the compose file does not pass %s through", name)
		}
	}
	// Without a key the service would start on an ephemeral one and print an admin token: a
	// published port must not start that way because a variable was forgotten.
	if _, err := composeEnvironment(t, app, nil); err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
		t.Errorf("with no variables set, compose would start the app (%v); want it to refuse for want of JWT_SECRET", err)
	}
	env, err := composeEnvironment(t, app, composeSecret)
	if err != nil {
		t.Fatalf("with JWT_SECRET set, compose would refuse: %v", err)
	}
	url := env["DATABASE_URL"]
	cfg, err := database.ParseURL(url)
	if err != nil || cfg.Dialect != database.MySQL || !strings.Contains(url, "@mysql:3306/") {
		t.Errorf("DATABASE_URL %q: %v", url, err)
	}
	if _, err := loadConfig(func(k string) string { return env[k] }); err != nil {
		t.Errorf("the compose file's environment is not a valid configuration: %v", err)
	}
}

func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range variables {
		if !strings.Contains(string(readme), "`"+v.Name+"`") {
			t.Errorf("README.md does not document %s", v.Name)
		}
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(raw)
	final := dockerfile[strings.LastIndex(dockerfile, "\nFROM "):]
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^FROM \S+ AS build$`),
		regexp.MustCompile(`(?m)^RUN CGO_ENABLED=0 go build .* -o /out/usergraph \.$`),
	} {
		if !want.MatchString(dockerfile) {
			t.Errorf("the Dockerfile lacks %s", want)
		}
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^FROM gcr\.io/distroless/static\S*:nonroot$`),
		regexp.MustCompile(`(?m)^USER nonroot`),
		regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["/usergraph", "healthcheck"\]$`),
		regexp.MustCompile(`(?m)^ENTRYPOINT \["/usergraph"\]$`),
	} {
		if !want.MatchString(final) {
			t.Errorf("the run stage lacks %s", want)
		}
	}
}

// The binary the Dockerfile builds, built with its very command, serves with the compose file's
// environment, answers the health check command, and exits 0 on SIGTERM.
func TestDockerfileBinaryServesComposeEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds the binary")
	}
	if !dbtest.MySQLConfigured(t) {
		t.Skip("needs TEST_MYSQL_DSN: the compose file runs the service on MySQL")
	}
	raw, _ := os.ReadFile("Dockerfile")
	build := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*)$`).FindStringSubmatch(string(raw))
	if build == nil {
		t.Fatal("no go build command in the Dockerfile")
	}
	bin := filepath.Join(t.TempDir(), "usergraph")
	cmd := exec.Command("sh", "-c", strings.Replace(build[1], "/out/usergraph", bin, 1))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build[1], err, out)
	}
	if f, err := elf.Open(bin); err != nil {
		t.Fatal(err)
	} else {
		libs, _ := f.ImportedLibraries()
		interp := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
		f.Close()
		if len(libs) > 0 || interp {
			t.Errorf("the binary is not static: libraries %v, interpreter %v", libs, interp)
		}
	}

	composed, err := composeEnvironment(t, readCompose(t).Services["app"], composeSecret)
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(freePort(t))
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range composed {
		switch k {
		case "DATABASE_URL":
			v = dbtest.MySQLURL(t) // the compose network's "mysql" is this test's server
		case "PORT":
			v = port
		}
		env = append(env, k+"="+v)
	}
	server := exec.Command(bin)
	server.Env, server.Dir = env, t.TempDir()
	stdout := &apitest.SyncBuffer{}
	server.Stdout, server.Stderr = stdout, stdout
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer server.Process.Kill()
	base := "http://127.0.0.1:" + port
	ready := false
	for deadline := time.Now().Add(30 * time.Second); !ready && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == 200
		}
	}
	if !ready {
		t.Fatalf("the binary did not become ready:\n%s", stdout.String())
	}
	probe := exec.Command(bin, "healthcheck")
	probe.Env = env
	if out, err := probe.CombinedOutput(); err != nil {
		t.Errorf("healthcheck: %v %s", err, out)
	}

	// It printed no token of its own, and a token signed with the compose file's JWT_SECRET works.
	if jwt := anyJWT.FindString(stdout.String()); jwt != "" {
		t.Errorf("with JWT_SECRET set, the binary printed a token: %s", jwt)
	}
	adminToken := token(t, "admin", auth.AdminRole)
	c := &testServer{Client: apitest.Client{URL: base, AdminToken: adminToken}}
	u := c.CreateUser(t, "containerized", "containerized@example.com")
	if r := c.Put(t, adminToken, u.ID, `{"username": "in-a-container"}`); r.Status != 200 {
		t.Errorf("PUT: %d %s", r.Status, r.Body)
	}

	server.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- server.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM the binary exited with %v, want 0", err)
		}
	case <-ctx.Done():
		t.Error("the binary did not exit after SIGTERM")
	}
}
