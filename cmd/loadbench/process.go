package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// startService runs the usergraph binary of -server, or one built from this module, on a free
// port, and returns once it answers /readyz. The caller stops it with stopService.
func startService(o options, tmp, databaseURL, secret string) (server *exec.Cmd, addr string, err error) {
	bin := o.server
	if bin == "" {
		bin = filepath.Join(tmp, "usergraph")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, "", fmt.Errorf("building the service: %w", err)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	server = exec.Command(bin)
	server.Dir = tmp
	server.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "DATABASE_URL="+databaseURL, "JWT_SECRET="+secret)
	if o.procs > 0 {
		server.Env = append(server.Env, "GOMAXPROCS="+strconv.Itoa(o.procs))
	}
	if o.env != "" {
		server.Env = append(server.Env, strings.Split(o.env, ",")...)
	}
	server.Stdout, server.Stderr = io.Discard, io.Discard
	if err := server.Start(); err != nil {
		return nil, "", err
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitReady("http://" + addr); err != nil {
		stopService(server)
		return nil, "", err
	}
	return server, addr, nil
}

// stopService kills the service rather than asking it to drain: the benchmark has measured all it
// wanted, and the database it wrote to is thrown away.
func stopService(server *exec.Cmd) { server.Process.Kill(); server.Wait() }

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
