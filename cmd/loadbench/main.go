// Command loadbench measures how close the service comes to its database's own limit for an
// update. In one run, on one fresh database, it drives at the same concurrency:
//
//	(a) the database itself: an UPDATE by primary key (autocommit) and a SELECT of the row, from Go
//	    with database/sql and prepared statements: the yardstick, whatever the service sends;
//	(b) PUT /users/{id} on the service;
//	(c) the updateUser mutation on the service;
//	(d) PUT /users/{id} with a new Idempotency-Key each time: what a key costs beside (b);
//
// each for -duration, every request changing a row (a unique username each time), on random users
// among -users, with an admin token. It builds the service, runs it as a process of its own, and
// reports requests per second, latency percentiles, errors (non-2xx answers and GraphQL errors,
// never hidden), the service's peak RSS, the CPU per request of the service, the database and
// itself, the statements the database received per request (MySQL's Questions counter) and the
// ratios of (b), (c) and (d) to (a).
//
//	go run ./cmd/loadbench -database mysql://root@127.0.0.1:3306/
//	go run ./cmd/loadbench -database sqlite
//
// The service runs as docker-compose.yml runs it, with one CPU's worth of Go scheduler
// (GOMAXPROCS=1): on cores it shares with its database, a second P costs more than it gives
// (-procs 0 measures Go's default). The HTTP load comes from one thread of wrk when it is
// installed (apt-get install wrk), else from fasthttp's client on one OS thread: the lighter the
// load generator, the less it takes from the cores the service and the database share, and the
// load CPU column shows what it took. With -runs 3 it repeats the phases and reports
// medians.
package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

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
	flag.StringVar(&o.database, "database", "mysql://root@127.0.0.1:3306/", `"sqlite"; a MySQL server as mysql://USER:PASS@HOST:PORT/ (a database is created on it and dropped after); or mysql://USER:PASS@HOST:PORT/DB, a database with the service's schema and no users, such as a fresh deploy/vitess cluster's keyspace`)
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each phase is measured")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "how long each phase runs before it is measured")
	flag.IntVar(&o.conns, "conns", 32, "concurrent connections, to the database in (a) and to the service in (b) and (c)")
	flag.IntVar(&o.users, "users", 10000, "users to update, at random")
	flag.IntVar(&o.runs, "runs", 1, "how many times to run the phases; medians are reported")
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

	secret := make([]byte, 32)
	rand.Read(secret)
	secretText := hex.EncodeToString(secret)
	server, addr, err := startService(o, tmp, databaseURL, secretText)
	if err != nil {
		return err
	}
	defer stopService(server)
	o.addr = addr
	base := "http://" + o.addr

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
	phases := []phase{
		{"(a) database ceiling", ceiling(db), ""},
		{"(b) PUT /users/{id}", putUser(token, false), "put"},
		{"(c) updateUser mutation", updateUserMutation(token), "mutation"},
		{"(d) PUT, Idempotency-Key", putUser(token, true), "put-keyed"},
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

	med := report(out, phases, results)
	errs := 0
	for i := range phases {
		errs += med[i].errors
	}
	if errs > 0 {
		return errors.New("there were errors")
	}
	return nil
}
