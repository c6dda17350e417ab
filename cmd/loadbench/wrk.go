package main

import (
	_ "embed"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

//go:embed wrk.lua
var wrkScript []byte

// wrkDriver drives phases (b) and (c) with wrk (Debian's package wrk), one thread, when it is
// installed: it takes about half the CPU per request that fasthttp's client does (16 against
// 28 µs here), and what the load generator takes, the service and the database do not get.
type wrkDriver struct {
	bin, script, base, token string
}

func newWrkDriver(dir, base, token string) (*wrkDriver, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "loadbench.lua")
	if err := os.WriteFile(script, wrkScript, 0o600); err != nil {
		return nil, err
	}
	return &wrkDriver{bin: bin, script: script, base: base, token: token}, nil
}

var wrkSummary = regexp.MustCompile(`LOADBENCH requests=(\d+) duration_us=(\d+) errors=(\d+) socket_errors=(\d+) p50_us=(\d+) p99_us=(\d+) first_error=(.*)`)

// measure runs one phase: wrk for the warm-up, then wrk again, observed, for o.duration.
func (d *wrkDriver) measure(o options, run, phase int, kind string, obs func() *observation) result {
	if _, err := d.run(o, run, phase, kind, "w", o.warmup); err != nil {
		return result{errors: 1, firstError: err.Error()}
	}
	observing := obs()
	out, err := d.run(o, run, phase, kind, "m", o.duration)
	res := observing.stop(phase)
	if err != nil {
		return result{errors: 1, firstError: err.Error()}
	}
	res.loadCPU += out.cpu
	res.seconds = out.seconds
	res.errors, res.firstError = out.errors, out.firstError
	res.p50, res.p99 = out.p50, out.p99
	res.perRequest(out.requests)
	return res
}

type wrkResult struct {
	requests, errors int
	seconds          float64
	p50, p99         time.Duration
	cpu              time.Duration
	firstError       string
}

func (d *wrkDriver) run(o options, run, phase int, kind, stage string, duration time.Duration) (wrkResult, error) {
	seconds := max(1, int(math.Ceil(duration.Seconds()))) // wrk counts whole seconds
	cmd := exec.Command(d.bin, "-t1", "-c"+strconv.Itoa(o.conns), "-d"+strconv.Itoa(seconds)+"s",
		"--timeout", "30s", "-s", d.script, d.base)
	cmd.Env = append(os.Environ(), "LB_KIND="+kind, "LB_TOKEN="+d.token, "LB_USERS="+strconv.Itoa(o.users),
		fmt.Sprintf("LB_PREFIX=lb%d%d%s", run, phase, stage), fmt.Sprintf("LB_SEED=%d", run*10+phase))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	m := wrkSummary.FindStringSubmatch(string(out))
	if m == nil {
		return wrkResult{}, fmt.Errorf("wrk printed no summary: %s", out)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	r := wrkResult{requests: n(1), seconds: float64(n(2)) / 1e6, errors: n(3) + n(4),
		p50: time.Duration(n(5)) * time.Microsecond, p99: time.Duration(n(6)) * time.Microsecond,
		cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), firstError: strings.TrimSpace(m[7])}
	if r.firstError == "" && n(4) > 0 {
		r.firstError = fmt.Sprintf("%d socket errors", n(4))
	}
	return r, nil
}
