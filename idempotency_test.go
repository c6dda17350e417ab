package main

import (
	"bytes"
	"net/http"
	"sync"
	"testing"

	"usergraph/idempotency"
	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// An Idempotency-Key's outcome is in the database, not in the process: a retry sent after a
// restart is replayed, byte for byte, and writes nothing.
func TestIdempotencyKeySurvivesARestart(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		env := map[string]string{"DATABASE_URL": databaseURL, "JWT_SECRET": testSecret}
		first := startRun(t, env)
		c := first.adminClient(t)
		u, own := c.newUser(t)
		key, body := apitest.Uniq("key"), `{"username": "`+apitest.Uniq("before-restart")+`"}`
		r1 := c.Put(t, own, u.ID, body, idempotency.Header, key)
		if r1.Status != http.StatusOK {
			t.Fatalf("first: got %d %s", r1.Status, r1.Body)
		}
		if err := first.stop(t); err != nil {
			t.Fatalf("stopping: %v", err)
		}

		second := startRun(t, env)
		r2 := second.client().Put(t, own, u.ID, body, idempotency.Header, key)
		if r2.Status != r1.Status || !bytes.Equal(r2.Body, r1.Body) || r2.Header.Get("ETag") != r1.Header.Get("ETag") || r2.Header.Get(idempotency.ReplayedHeader) != "true" {
			t.Errorf("after a restart: got %d %s ETag %q replayed %q\nwant a replay of %d %s ETag %q",
				r2.Status, r2.Body, r2.Header.Get("ETag"), r2.Header.Get(idempotency.ReplayedHeader), r1.Status, r1.Body, r1.Header.Get("ETag"))
		}
		if got := dbtest.Stored(t, dbtest.Open(t, databaseURL), u.ID).Version; got != 2 {
			t.Errorf("version %d, want 2: one update", got)
		}
	})
}

// Replicas on one database share the keys: one keyed request sent to every replica at once, as
// a client's retries through a load balancer would be, makes one update; the others are replays
// of it or told that it is still running.
func TestIdempotencyKeyAcrossReplicas(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		env := map[string]string{"DATABASE_URL": databaseURL, "JWT_SECRET": testSecret}
		// One after the other: instances starting together take turns at the schema on MySQL
		// only (TestReplicasStartTogether).
		replicas := []*running{startRun(t, env), startRun(t, env)}
		c := replicas[0].adminClient(t)
		u, own := c.newUser(t)
		key, body := apitest.Uniq("key"), `{"username": "`+apitest.Uniq("replicated")+`"}`

		const perReplica = 4
		responses := make([]apitest.RESTResponse, perReplica*len(replicas))
		var wg sync.WaitGroup
		for i := range responses {
			r := replicas[i%len(replicas)].client()
			wg.Go(func() { responses[i] = r.Put(t, own, u.ID, body, idempotency.Header, key) })
		}
		wg.Wait()
		ran := 0
		for _, r := range responses {
			switch {
			case r.Status == http.StatusOK && r.Header.Get(idempotency.ReplayedHeader) == "":
				ran++
			case r.Status == http.StatusOK:
			case r.Status == http.StatusConflict && r.Problem(t).Code == "IDEMPOTENCY_KEY_IN_USE":
			default:
				t.Errorf("got %d %s, want 200 or 409 IDEMPOTENCY_KEY_IN_USE", r.Status, r.Body)
			}
		}
		if ran != 1 {
			t.Errorf("%d requests ran the update, want 1", ran)
		}
		if got := dbtest.Stored(t, dbtest.Open(t, databaseURL), u.ID).Version; got != 2 {
			t.Errorf("version %d, want 2: one update", got)
		}
	})
}
