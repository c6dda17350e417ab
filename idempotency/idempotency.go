// Package idempotency makes a retried write safe, on both edges of the service: a request that
// carries an Idempotency-Key runs once, and a retry of it with the same key gets the first
// outcome again, byte for byte, without running. It follows Stripe's idempotency keys and the
// IETF's Idempotency-Key header draft.
//
// An outcome is stored in the same database transaction as the write it reports, so that no
// failure between the two (a crash, a lost connection) can leave a write without its outcome, for
// a retry to apply a second time.
package idempotency

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"

	"usergraph/models"
)

// The headers of the protocol.
const (
	// Header carries the client's key for a request.
	Header = "Idempotency-Key"
	// ReplayedHeader says that a response is the stored outcome of an earlier request with the
	// same key, which this one did not run again (Stripe's name for it).
	ReplayedHeader = "Idempotent-Replayed"
)

// MaxKeyLength is how long a key may be, in bytes.
const MaxKeyLength = 255

// DefaultTTL is how long an outcome is kept unless configured otherwise.
const DefaultTTL = 24 * time.Hour

// ParseKey returns the key that the request's Idempotency-Key header carries, and false when it
// carries none. Codes: BAD_USER_INPUT for a header given twice, or a key that is not 1 to
// MaxKeyLength printable ASCII characters.
func ParseKey(h http.Header) (string, bool, error) {
	values := h.Values(Header)
	switch {
	case len(values) == 0:
		return "", false, nil
	case len(values) > 1:
		return "", true, keyError("is given more than once: send one key")
	}
	key := values[0]
	if key == "" || len(key) > MaxKeyLength {
		return "", true, keyError(fmt.Sprintf("must be 1 to %d characters long", MaxKeyLength))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "", true, keyError("must be printable ASCII characters only")
		}
	}
	return key, true, nil
}

func keyError(message string) error {
	return &models.Error{
		Code:    models.BadUserInput,
		Message: Header + ": " + message,
		Fields:  []models.FieldError{{Field: Header, Message: message}},
	}
}

// Request is a request that carries a key.
type Request struct {
	// Caller is the sub of the caller's token: keys are the caller's own, and two callers' equal
	// keys are two keys.
	Caller string
	// Key is the client's key, as ParseKey returned it.
	Key string
	// Fingerprint identifies the request that the key was sent with (see Fingerprint): the same
	// key with another fingerprint is another request, and is refused.
	Fingerprint []byte
}

// Fingerprint returns the fingerprint of a request made of parts, such as its method, path,
// preconditions and body: parts are told apart by their lengths, so that no two lists of parts
// give the same fingerprint by running into each other.
func Fingerprint(parts ...[]byte) []byte {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}

// Response is an outcome as an edge sent it: a replay sends it again.
type Response struct {
	Status int
	// Header holds the headers the edge set: Content-Type, ETag, Cache-Control and the like.
	Header http.Header
	Body   []byte
}

// Record is what a Store keeps for a key.
type Record struct {
	// Fingerprint is the fingerprint of the request that took the key.
	Fingerprint []byte
	// Token identifies the run that holds the key, so that one whose lock ran out and was taken
	// over cannot store its outcome over the one that took over.
	Token []byte
	// LockedUntil ends the hold of a running request on the key. A request that is still running
	// then has been given up by its server (its deadline is shorter) or died with its server; its
	// writes were rolled back with its transaction, and another request may take the key over.
	LockedUntil time.Time
	// ExpiresAt is when the record may be purged, and no longer counts.
	ExpiresAt time.Time
	// Response is the outcome, once there is one: nil while the request runs.
	Response *Response
}

// Store keeps the records of keys. Its ID for a key (see ID) is computed from the caller and the
// key by Keeper. Each method may return SERVICE_UNAVAILABLE (models.UnavailableError) when the
// database cannot be reached; any other error is internal.
type Store interface {
	// Insert stores rec under id unless a record is stored there, and reports whether it did.
	Insert(ctx context.Context, id []byte, rec Record) (bool, error)
	// Get returns the record under id, or nil if there is none.
	Get(ctx context.Context, id []byte) (*Record, error)
	// Replace replaces the record under id with rec if it still holds token, and reports whether
	// it did.
	Replace(ctx context.Context, id, token []byte, rec Record) (bool, error)
	// InTx runs fn in one database transaction, which fn's ctx carries: the writes of the
	// service's UserStore and Complete, made with that ctx, are in it. The transaction commits if
	// fn returns nil, and is rolled back otherwise.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	// Complete stores resp as the outcome of the record under id, if it still holds token; else
	// it returns ErrLost.
	Complete(ctx context.Context, id, token []byte, resp Response) error
	// Release removes the record under id if it still holds token.
	Release(ctx context.Context, id, token []byte) error
	// Purge removes up to limit records that expired before now, and returns how many it
	// removed. It finds them through an index on the expiry, never by reading every record.
	Purge(ctx context.Context, now time.Time, limit int) (int, error)
}

// ErrLost is Complete's error for a record that another run took over.
var ErrLost = errors.New("idempotency: the key was taken over by another request")

// Keeper runs keyed requests once each.
type Keeper struct {
	store Store
	ttl   time.Duration
	lock  time.Duration
	now   func() time.Time
}

// NewKeeper returns a Keeper that keeps outcomes in store for ttl. lock is how long a running
// request holds its key: longer than any request may run, so that a request still running is never
// taken for one whose server died.
func NewKeeper(store Store, ttl, lock time.Duration) *Keeper {
	return &Keeper{store: store, ttl: ttl, lock: lock, now: time.Now}
}

// Kept reports whether an outcome with this code is stored and replayed. Successes are, and
// refusals that come from the request itself, which running it again would only repeat: input,
// existence, uniqueness, preconditions. An authentication or authorization failure is not, so
// that a retry with a fixed token runs; nor is an outage or an internal error, so that a retry
// after it runs.
func Kept(code models.Code) bool {
	switch code {
	case "", models.BadUserInput, models.NotFound, models.Conflict, models.PreconditionFailed, models.PreconditionRequired:
		return true
	}
	return false
}

// errNotKept rolls back the transaction of an outcome that is not kept.
var errNotKept = errors.New("idempotency: outcome not kept")

// maxClaimAttempts bounds how often Do looks again at a key whose record changed under it.
const maxClaimAttempts = 3

// Do runs req once. The first request with its key runs serve in a transaction, which serve's
// ctx carries, and writes what serve writes to w; serve returns the code of its outcome ("" for a
// success). An outcome that is Kept is stored in that transaction, and sent again, with
// ReplayedHeader, to every retry of req before the key expires; any other is rolled back with
// whatever serve wrote to the database, and the key is let go for a retry to run.
//
// When it writes nothing to w, Do returns the error for the edge to answer with:
// IDEMPOTENCY_KEY_MISMATCH for the key of another request, IDEMPOTENCY_KEY_IN_USE while the
// first request runs, and SERVICE_UNAVAILABLE.
func (k *Keeper) Do(ctx context.Context, w http.ResponseWriter, req Request, serve func(ctx context.Context, w http.ResponseWriter) models.Code) error {
	id := ID(req.Caller, req.Key)
	token := make([]byte, 16)
	rand.Read(token)
	now := k.now()
	rec := Record{Fingerprint: req.Fingerprint, Token: token, LockedUntil: now.Add(k.lock), ExpiresAt: now.Add(k.ttl)}
	claimed, err := k.claim(ctx, id, rec, now, w)
	if err != nil || !claimed {
		return err
	}

	rw := newRecorder()
	err = k.store.InTx(ctx, func(ctx context.Context) error {
		// An outcome that wrote nothing, as when the client went away and the edge had nobody
		// to answer, is none to replay.
		if code := serve(ctx, rw); !Kept(code) || rw.status == 0 {
			return errNotKept
		}
		return k.store.Complete(ctx, id, token, rw.response())
	})
	switch {
	case err == nil:
	case errors.Is(err, errNotKept):
		// The key goes with the outcome, so that a retry runs at once. Should the release fail,
		// the key is free again when its lock runs out.
		k.store.Release(context.WithoutCancel(ctx), id, token)
	case errors.Is(err, ErrLost):
		return inUse
	default:
		k.store.Release(context.WithoutCancel(ctx), id, token)
		return err
	}
	// serve wrote nothing when there was nobody left to answer (the client went away): a 200
	// with no body would be a response it never gave.
	if rw.status != 0 {
		rw.response().writeTo(w)
	}
	return nil
}

// claim takes the key for rec, or answers the request from the key's record: a replay (written to
// w), a mismatch, or a key in use.
func (k *Keeper) claim(ctx context.Context, id []byte, rec Record, now time.Time, w http.ResponseWriter) (bool, error) {
	for range maxClaimAttempts {
		inserted, err := k.store.Insert(ctx, id, rec)
		if err != nil || inserted {
			return inserted, err
		}
		held, err := k.store.Get(ctx, id)
		switch {
		case err != nil:
			return false, err
		case held == nil:
			continue // purged in between
		case !held.ExpiresAt.After(now):
			// An expired record no longer counts: the key is new again.
		case !bytes.Equal(held.Fingerprint, rec.Fingerprint):
			return false, mismatch
		case held.Response != nil:
			w.Header().Set(ReplayedHeader, "true")
			held.Response.writeTo(w)
			return false, nil
		case held.LockedUntil.After(now):
			return false, inUse
		}
		replaced, err := k.store.Replace(ctx, id, held.Token, rec)
		if err != nil || replaced {
			return replaced, err
		}
	}
	return false, inUse
}

var (
	mismatch = models.Errorf(models.IdempotencyKeyMismatch,
		"this Idempotency-Key was sent before with another request: use a new key for a new request")
	inUse = models.Errorf(models.IdempotencyKeyInUse,
		"a request with this Idempotency-Key is still running: retry once it has ended")
)

// ID is the ID under which the record of caller's key is stored: a hash, of one length
// whatever the key, compared byte for byte on every database, where a column of text might be
// compared without regard to case.
func ID(caller, key string) []byte {
	return Fingerprint([]byte("idempotency-key"), []byte(caller), []byte(key))
}

// PurgeEvery removes expired records, batch at a time, every interval until ctx ends.
// Failures are left for the next round: a record that outlives its expiry no longer counts anyway.
func (k *Keeper) PurgeEvery(ctx context.Context, interval time.Duration, batch int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			n, err := k.store.Purge(ctx, k.now(), batch)
			if err != nil || n < batch {
				break
			}
		}
	}
}

// recorder is the http.ResponseWriter that serve writes to, so that what it writes can be stored
// before anything is sent.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

func (r *recorder) response() Response {
	return Response{Status: cmp.Or(r.status, http.StatusOK), Header: r.header, Body: r.body.Bytes()}
}

// writeTo sends the response.
func (resp Response) writeTo(w http.ResponseWriter) {
	for name, values := range resp.Header {
		w.Header()[name] = values
	}
	w.WriteHeader(resp.Status)
	w.Write(resp.Body)
}
