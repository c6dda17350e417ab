package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

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

// report writes the table of each phase's medians over the runs, the ratios of the service's
// phases to the ceiling, and the first error each phase met, and returns the medians.
func report(out io.Writer, phases []phase, results [][]result) []result {
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
	fmt.Fprint(out, "\np99 vs (a):")
	for i := 1; i < len(phases); i++ {
		fmt.Fprintf(out, " %s %.2fx", phases[i].name[:3], float64(med[i].p99)/float64(med[0].p99))
	}
	fmt.Fprintln(out)
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
	return med
}

func dashes(n int) string { return strings.Repeat("-", n) }

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
		}
	}
	return "unknown CPU"
}
