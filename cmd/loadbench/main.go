// Command loadbench measures how close the service comes to its database's own limit for an
// update. In one run, on one fresh database, it drives at the same concurrency:
//
//	(a) the database itself: an UPDATE by primary key (autocommit) and a SELECT of the row, from Go
//	    with database/sql and prepared statements: the yardstick, whatever the service sends;
//	(b) PUT /users/{id} on the service;
//	(c) the updateUser mutation on the service;
//
// each for -duration, every request changing a row (a unique username each time), on random users
// among -users, with an admin token. It builds the service, runs it as a process of its own, and
// reports requests per second, latency percentiles, errors (non-2xx answers and GraphQL errors,
// never hidden), the service's peak RSS, the CPU per request of the service, the database and
// itself, the statements the database received per request (MySQL's Questions counter) and the
// ratios (b)/(a) and (c)/(a).
//
//	go run ./cmd/loadbench -database mysql://root@127.0.0.1:3306/
//	go run ./cmd/loadbench -database sqlite
//
// The service runs as docker-compose.yml runs it, with one CPU's worth of Go scheduler
// (GOMAXPROCS=1): on cores it shares with its database, a second P costs more than it gives
// (-procs 0 measures Go's default). The HTTP load comes from one thread of wrk when it is
// installed (apt-get install wrk), else from fasthttp's client on one OS thread: the lighter the
// load generator, the less it takes from the cores the service and the database share, and the
// load CPU column shows what it took. With -runs 3 it repeats the three phases and reports
// medians.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/glebarez/go-sqlite"
	"github.com/go-sql-driver/mysql"
	"github.com/valyala/fasthttp"

	"usergraph/auth"
)

type options struct {
	database string
	duration time.Duration
	warmup   time.Duration
	conns    int
	users    int
	runs     int
	server   string
	env      string
	procs    int
	client   string
	addr     string // the service's host:port, once it runs
}

func main() {
	var o options
	flag.StringVar(&o.database, "database", "mysql://root@127.0.0.1:3306/", `"sqlite", or a MySQL server as mysql://USER:PASS@HOST:PORT/ (a database is created on it and dropped after)`)
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each phase is measured")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "how long each phase runs before it is measured")
	flag.IntVar(&o.conns, "conns", 32, "concurrent connections, to the database in (a) and to the service in (b) and (c)")
	flag.IntVar(&o.users, "users", 10000, "users to update, at random")
	flag.IntVar(&o.runs, "runs", 1, "how many times to run the three phases; medians are reported")
	flag.StringVar(&o.server, "server", "", "a usergraph binary to run (default: go build . into a temporary directory)")
	flag.StringVar(&o.env, "env", "", "extra environment for the service, as NAME=VALUE,NAME=VALUE")
	flag.StringVar(&o.client, "client", "auto", `what sends the HTTP load: "wrk" (Debian's package), "fasthttp" (built in), or "auto": wrk if installed`)
	flag.IntVar(&o.procs, "procs", 1, "GOMAXPROCS for the service: 1, as docker-compose.yml's one CPU gives it; 0 for Go's default, the machine's cores")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

// result is one phase of one run.
type result struct {
	requests, errors  int
	seconds           float64
	p50, p99          time.Duration
	peakRSS           int64   // bytes, of the service
	cpuPerRequest     float64 // µs of the service's CPU
	dbCPUPerRequest   float64 // µs of the database server's CPU, when it runs on this machine
	loadCPUPerRequest float64 // µs of this program's own CPU: what the load generator takes from the cores
	statements        float64 // per request, from Questions
	firstError        string

	serviceCPU, databaseCPU, loadCPU time.Duration // totals over the phase
	questions                        int64
}

func (r result) perSecond() float64 { return float64(r.requests) / r.seconds }

// run measures, writing its report to out, and fails if any request failed.
func run(o options, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "loadbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	dsn, databaseURL, cleanup, err := prepareDatabase(o, tmp)
	if err != nil {
		return err
	}
	defer cleanup()

	bin := o.server
	if bin == "" {
		bin = filepath.Join(tmp, "usergraph")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building the service: %w", err)
		}
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	secretText := hex.EncodeToString(secret)
	port, err := freePort()
	if err != nil {
		return err
	}
	server := exec.Command(bin)
	server.Dir = tmp
	server.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "DATABASE_URL="+databaseURL, "JWT_SECRET="+secretText)
	if o.procs > 0 {
		server.Env = append(server.Env, "GOMAXPROCS="+strconv.Itoa(o.procs))
	}
	if o.env != "" {
		server.Env = append(server.Env, strings.Split(o.env, ",")...)
	}
	server.Stdout, server.Stderr = io.Discard, io.Discard
	if err := server.Start(); err != nil {
		return err
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	o.addr = fmt.Sprintf("127.0.0.1:%d", port)
	base := "http://" + o.addr
	if err := waitReady(base); err != nil {
		return err
	}

	db, err := sql.Open(driverOf(databaseURL), dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(o.conns)
	db.SetMaxIdleConns(o.conns)
	if err := seed(db, o.users); err != nil {
		return fmt.Errorf("seeding %d users: %w", o.users, err)
	}
	token, err := auth.Sign(auth.Config{Secret: []byte(secretText)}, auth.TokenRequest{Subject: "loadbench", Roles: []string{auth.AdminRole}, TTL: 24 * time.Hour})
	if err != nil {
		return err
	}

	mysqlServer := driverOf(databaseURL) == "mysql"
	var wrk *wrkDriver
	if o.client != "fasthttp" {
		if wrk, err = newWrkDriver(tmp, base, token); err != nil && o.client == "wrk" {
			return fmt.Errorf("-client wrk: %w", err)
		}
	}
	load := "fasthttp's client"
	if wrk != nil {
		load = "wrk"
	}
	procs := "Go's default"
	if o.procs > 0 {
		procs = strconv.Itoa(o.procs)
	}
	fmt.Fprintf(out, "loadbench: %s, %d connections, %d users, %s per phase (after %s of warm-up), %d run(s), HTTP load from %s on 1 thread, service GOMAXPROCS %s\n",
		strings.Split(databaseURL, ":")[0], o.conns, o.users, o.duration, o.warmup, o.runs, load, procs)
	fmt.Fprintf(out, "machine: %d cores, %s\n", runtime.NumCPU(), cpuModel())
	phases := []struct {
		name string
		op   func(w *worker) error
		kind string // for wrk
	}{
		{"(a) database ceiling", ceiling(db), ""},
		{"(b) PUT /users/{id}", putUser(token), "put"},
		{"(c) updateUser mutation", updateUserMutation(token), "mutation"},
	}
	results := make([][]result, len(phases))
	for r := range o.runs {
		for i, p := range phases {
			var res result
			if i > 0 && wrk != nil {
				res = wrk.measure(o, r, i, p.kind, func() *observation { return startObserving(server.Process.Pid, db, mysqlServer) })
			} else {
				res = measure(o, r, i, p.op, server.Process.Pid, db, mysqlServer)
			}
			results[i] = append(results[i], res)
			fmt.Fprintf(os.Stderr, "run %d %-26s %8.0f req/s  p50 %-9s p99 %-9s errors %d\n", r+1, p.name, res.perSecond(), res.p50, res.p99, res.errors)
		}
	}

	fmt.Fprintln(out)
	fmt.Fprintf(out, "| %-26s | %8s | %9s | %9s | %6s | %9s | %12s | %12s | %12s | %10s | %8s |\n",
		"phase (medians)", "req/s", "p50", "p99", "errors", "peak RSS", "service CPU", "database CPU", "load CPU", "statements", "vs (a)")
	fmt.Fprintf(out, "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", dashes(28), dashes(10), dashes(11), dashes(11), dashes(8), dashes(11), dashes(14), dashes(14), dashes(14), dashes(12), dashes(10))
	med := make([]result, len(phases))
	for i, p := range phases {
		med[i] = median(results[i])
		rss, cpu, ratio := "", "", ""
		if i > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(med[i].peakRSS)/(1<<20))
			cpu = fmt.Sprintf("%.0f µs/req", med[i].cpuPerRequest)
			ratio = fmt.Sprintf("%.2fx", med[i].perSecond()/med[0].perSecond())
		}
		dbcpu, stmts := "n/a", "n/a"
		if med[i].dbCPUPerRequest > 0 {
			dbcpu = fmt.Sprintf("%.0f µs/req", med[i].dbCPUPerRequest)
		}
		if med[i].statements > 0 {
			stmts = fmt.Sprintf("%.2f", med[i].statements)
		}
		fmt.Fprintf(out, "| %-26s | %8.0f | %9s | %9s | %6d | %9s | %12s | %12s | %12s | %10s | %8s |\n",
			p.name, med[i].perSecond(), med[i].p50.Round(time.Microsecond), med[i].p99.Round(time.Microsecond), med[i].errors, rss, cpu, dbcpu,
			fmt.Sprintf("%.0f µs/req", med[i].loadCPUPerRequest), stmts, ratio)
	}
	fmt.Fprintf(out, "\np99 vs (a): (b) %.2fx, (c) %.2fx\n", float64(med[1].p99)/float64(med[0].p99), float64(med[2].p99)/float64(med[0].p99))
	// The ceiling moves with whatever else the machine is doing; a run's own ratios, measured
	// seconds apart, show how much of the spread is the machine's.
	for i := 1; i < len(phases); i++ {
		fmt.Fprintf(out, "%s vs (a), run by run:", phases[i].name[:3])
		for r := range results[i] {
			fmt.Fprintf(out, " %.2fx", results[i][r].perSecond()/results[0][r].perSecond())
		}
		fmt.Fprintln(out)
	}
	for i, p := range phases {
		for _, r := range results[i] {
			if r.firstError != "" {
				fmt.Fprintf(out, "first error in %s: %s\n", p.name, r.firstError)
				break
			}
		}
	}
	errs := 0
	for i := range phases {
		errs += med[i].errors
	}
	if errs > 0 {
		return errors.New("there were errors")
	}
	return nil
}

func dashes(n int) string { return strings.Repeat("-", n) }

// worker is one connection's loop: its own client, random source and latency record.
type worker struct {
	id     int
	run    int
	phase  int
	seq    int
	rnd    *mathrand.Rand
	users  int
	client *fasthttp.HostClient
	req    fasthttp.Request
	resp   fasthttp.Response
}

// nextName returns a username no other request of this benchmark uses.
func (w *worker) nextName() string {
	w.seq++
	return fmt.Sprintf("lb%d%d-%d-%d", w.run, w.phase, w.id, w.seq)
}

func (w *worker) randomID() int { return 1 + w.rnd.IntN(w.users) }

// measure runs one phase: a warm-up, then o.duration measured.
func measure(o options, run, phase int, op func(*worker) error, pid int, db *sql.DB, mysqlServer bool) result {
	var measuring, stop atomic.Bool
	latencies := make([][]time.Duration, o.conns)
	errCount := make([]int, o.conns)
	firstErr := make([]string, o.conns)
	// Without wrk, fasthttp's client rather than net/http's: it does a request's work in the
	// caller's goroutine, with no per-connection reader and writer goroutines to hand it between,
	// and takes about a third less CPU per request (28 against 43 µs here).
	client := &fasthttp.HostClient{Addr: o.addr, MaxConns: o.conns, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	var wg sync.WaitGroup
	for i := range o.conns {
		w := &worker{id: i, run: run, phase: phase, rnd: mathrand.New(mathrand.NewPCG(uint64(i), uint64(run*10+phase))), users: o.users,
			client: client}
		wg.Go(func() {
			for !stop.Load() {
				start := time.Now()
				err := op(w)
				elapsed := time.Since(start)
				if !measuring.Load() {
					continue
				}
				latencies[i] = append(latencies[i], elapsed)
				if err != nil {
					errCount[i]++
					if firstErr[i] == "" {
						firstErr[i] = err.Error()
					}
				}
			}
		})
	}
	time.Sleep(o.warmup)

	obs := startObserving(pid, db, mysqlServer)
	start := time.Now()
	measuring.Store(true)
	time.Sleep(o.duration)
	measuring.Store(false)
	seconds := time.Since(start).Seconds()
	res := obs.stop(phase)
	stop.Store(true)
	wg.Wait()
	client.CloseIdleConnections()

	var all []time.Duration
	for i := range o.conns {
		all = append(all, latencies[i]...)
		res.errors += errCount[i]
		if res.firstError == "" {
			res.firstError = firstErr[i]
		}
	}
	res.seconds = seconds
	if len(all) > 0 {
		slices.Sort(all)
		res.p50, res.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	res.perRequest(len(all))
	return res
}

// observation is what a phase reads of the machine while it is measured: the CPU time of the
// service, the database server and the load, MySQL's Questions counter, and the service's peak RSS.
type observation struct {
	pid, dbPID              int
	db                      *sql.DB
	mysqlServer             bool
	service, database, load time.Duration // at the start
	questions               int64         // at the start
	peak                    atomic.Int64
	stopSampling            atomic.Bool
	samplerDone             chan struct{}
}

func startObserving(pid int, db *sql.DB, mysqlServer bool) *observation {
	o := &observation{pid: pid, db: db, mysqlServer: mysqlServer, samplerDone: make(chan struct{})}
	if mysqlServer {
		o.dbPID = mariadbPID() // SQLite runs inside the service
	}
	o.questions = questions(db, mysqlServer)
	o.service, o.database, o.load = cpuTime(pid), cpuTime(o.dbPID), cpuTime(os.Getpid())
	go func() {
		defer close(o.samplerDone)
		for !o.stopSampling.Load() {
			if rss := rssOf(pid); rss > o.peak.Load() {
				o.peak.Store(rss)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return o
}

// stop ends the observation and returns a result holding what it saw; perRequest divides it.
func (o *observation) stop(phase int) result {
	service, database, load := cpuTime(o.pid), cpuTime(o.dbPID), cpuTime(os.Getpid())
	q := questions(o.db, o.mysqlServer)
	o.stopSampling.Store(true)
	<-o.samplerDone
	res := result{peakRSS: o.peak.Load(), loadCPU: load - o.load}
	if phase > 0 {
		res.serviceCPU = service - o.service
	}
	if database > o.database {
		res.databaseCPU = database - o.database
	}
	if q > o.questions {
		// Less the two SHOW STATUS statements that read the counter.
		res.questions = q - o.questions - 1
	}
	return res
}

// perRequest records the requests measured and turns the observed totals into figures per request.
func (r *result) perRequest(requests int) {
	r.requests = requests
	if requests == 0 {
		return
	}
	per := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(requests) }
	r.cpuPerRequest, r.dbCPUPerRequest, r.loadCPUPerRequest = per(r.serviceCPU), per(r.databaseCPU), per(r.loadCPU)
	r.statements = float64(r.questions) / float64(requests)
}

// median returns, field by field, the median of the runs' results.
func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	perSecond := pick(result.perSecond)
	return result{
		requests:          int(perSecond * 1000),
		seconds:           1000,
		errors:            int(pick(func(r result) float64 { return float64(r.errors) })),
		p50:               time.Duration(pick(func(r result) float64 { return float64(r.p50) })),
		p99:               time.Duration(pick(func(r result) float64 { return float64(r.p99) })),
		peakRSS:           int64(pick(func(r result) float64 { return float64(r.peakRSS) })),
		cpuPerRequest:     pick(func(r result) float64 { return r.cpuPerRequest }),
		dbCPUPerRequest:   pick(func(r result) float64 { return r.dbCPUPerRequest }),
		loadCPUPerRequest: pick(func(r result) float64 { return r.loadCPUPerRequest }),
		statements:        pick(func(r result) float64 { return r.statements }),
	}
}

// ceiling is phase (a): the update's two statements, straight to the database.
func ceiling(db *sql.DB) func(*worker) error {
	var once sync.Once
	var update, read *sql.Stmt
	var prepErr error
	return func(w *worker) error {
		once.Do(func() {
			update, prepErr = db.Prepare("UPDATE users SET username = ?, username_key = ?, version = version + 1, updated_at = ? WHERE id = ?")
			if prepErr == nil {
				read, prepErr = db.Prepare("SELECT id, username, email, version, created_at, updated_at FROM users WHERE id = ?")
			}
		})
		if prepErr != nil {
			return prepErr
		}
		id, name := w.randomID(), w.nextName()
		res, err := update.Exec(name, strings.ToLower(name), time.Now().UTC(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("UPDATE changed %d rows", n)
		}
		var (
			uid, version     int64
			username, email  string
			created, updated any
		)
		return read.QueryRow(id).Scan(&uid, &username, &email, &version, &created, &updated)
	}
}

// putUser is phase (b).
func putUser(token string) func(*worker) error {
	auth := "Bearer " + token
	return func(w *worker) error {
		id := w.randomID()
		name := w.nextName()
		w.prepare(http.MethodPut, "/users/"+strconv.Itoa(id), auth, `{"username":"`+name+`"}`)
		return send(w, func(body []byte) error {
			// The user as stored after the update: another request for the same user may have
			// changed it again in between, so the ID is what must match.
			if !bytes.Contains(body, []byte(`"id":"`+strconv.Itoa(id)+`"`)) {
				return fmt.Errorf("unexpected body %.200s", body)
			}
			return nil
		})
	}
}

// updateUserMutation is phase (c).
func updateUserMutation(token string) func(*worker) error {
	auth := "Bearer " + token
	return func(w *worker) error {
		id := w.randomID()
		name := w.nextName()
		w.prepare(http.MethodPost, "/graphql", auth, `{"query":"mutation($id: ID!, $in: UpdateUserInput!) { updateUser(id: $id, input: $in) { id username email version } }","variables":{"id":"`+
			strconv.Itoa(id)+`","in":{"username":"`+name+`"}}}`)
		return send(w, func(body []byte) error {
			if bytes.Contains(body, []byte(`"errors"`)) || !bytes.Contains(body, []byte(`"id":"`+strconv.Itoa(id)+`"`)) {
				return fmt.Errorf("GraphQL answered %.200s", body)
			}
			return nil
		})
	}
}

// prepare sets the worker's request up: a JSON body, sent with the token.
func (w *worker) prepare(method, uri, authorization, body string) {
	w.req.Reset()
	w.req.Header.SetMethod(method)
	w.req.SetRequestURI(uri)
	w.req.Header.SetHost(w.client.Addr)
	w.req.Header.SetContentType("application/json")
	w.req.Header.Set("Authorization", authorization)
	w.req.SetBodyString(body)
}

func send(w *worker, check func([]byte) error) error {
	w.resp.Reset()
	if err := w.client.Do(&w.req, &w.resp); err != nil {
		return err
	}
	body := w.resp.Body()
	if status := w.resp.StatusCode(); status/100 != 2 {
		return fmt.Errorf("status %d: %.200s", status, body)
	}
	return check(body)
}

// prepareDatabase makes a fresh database and returns its DSN for database/sql, its DATABASE_URL
// for the service, and what drops it.
func prepareDatabase(o options, tmp string) (dsn, databaseURL string, cleanup func(), err error) {
	if o.database == "sqlite" {
		path := filepath.Join(tmp, "load.db")
		return "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_time_format=sqlite", "sqlite:" + path, func() {}, nil
	}
	u, err := url.Parse(o.database)
	if err != nil || u.Scheme != "mysql" {
		return "", "", nil, fmt.Errorf("-database must be sqlite or mysql://USER:PASS@HOST:PORT/")
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User = "tcp", u.Host, u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.ParseTime = true
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return "", "", nil, err
	}
	name := "usergraph_load_" + strconv.FormatInt(time.Now().Unix(), 36)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		return "", "", nil, fmt.Errorf("creating a database on %s: %w", u.Host, err)
	}
	cfg.DBName = name
	u.Path = "/" + name
	return cfg.FormatDSN(), u.String(), func() {
		admin.Exec("DROP DATABASE " + name)
		admin.Close()
	}, nil
}

func driverOf(databaseURL string) string {
	if strings.HasPrefix(databaseURL, "sqlite:") {
		return "sqlite"
	}
	return "mysql"
}

// seed inserts users 1..n, in batches.
func seed(db *sql.DB, n int) error {
	now := time.Now().UTC()
	for start := 1; start <= n; start += 500 {
		var q strings.Builder
		var args []any
		q.WriteString("INSERT INTO users (id, username, email, username_key, email_key, version, created_at, updated_at) VALUES ")
		for id := start; id < start+500 && id <= n; id++ {
			if id > start {
				q.WriteString(",")
			}
			q.WriteString("(?, ?, ?, ?, ?, 1, ?, ?)")
			name := fmt.Sprintf("seed%d", id)
			args = append(args, id, name, name+"@example.com", name, name+"@example.com", now, now)
		}
		if _, err := db.Exec(q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

func waitReady(base string) error {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
	}
	return errors.New("the service did not become ready")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// questions reads MySQL's Questions counter: statements the server received from clients.
func questions(db *sql.DB, mysqlServer bool) int64 {
	if !mysqlServer {
		return 0
	}
	var name string
	var n int64
	if err := db.QueryRowContext(context.Background(), "SHOW GLOBAL STATUS LIKE 'Questions'").Scan(&name, &n); err != nil {
		return 0
	}
	return n
}

// rssOf returns a process's resident memory, in bytes.
func rssOf(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime returns the user and system CPU time a process has used.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it are plain.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// mariadbPID finds a local MySQL-compatible server, to report its CPU per request too.
func mariadbPID() int {
	for _, name := range []string{"mariadbd", "mysqld"} {
		out, err := exec.Command("pidof", name).Output()
		if err == nil {
			if pid, err := strconv.Atoi(strings.Fields(string(out))[0]); err == nil {
				return pid
			}
		}
	}
	return 0
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
		}
	}
	return "unknown CPU"
}
