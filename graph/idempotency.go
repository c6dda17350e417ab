package graph

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"usergraph/idempotency"
	"usergraph/models"
)

// errKeyedBatch refuses a batch with an Idempotency-Key, which could not say which of its
// operations a retry repeats.
const errKeyedBatch = "an Idempotency-Key covers one request carrying one mutation: send the mutation in a request of its own, not in a batch"

// doKeyed runs a request that carries an Idempotency-Key. A mutation of exactly one field, made by
// an authenticated caller, runs through the keeper: once, its outcome stored with its writes and
// replayed to retries. A query runs as without the key, which only a write needs; so does a
// request without a caller, which its resolvers refuse. A mutation of several fields is refused,
// since one key could not tell which of them a retry repeats.
func (t jsonPOST) doKeyed(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, media string, p *requestParams, start time.Time, key string, body []byte) {
	ctx, opCtx, resp, status := prepare(r, exec, media, p, start, true)
	if resp != nil {
		writeResponse(w, media, status, encodable(resp))
		return
	}
	caller := models.CallerFrom(ctx)
	if opCtx.Operation.Operation != ast.Mutation || caller == nil {
		resp, status := execute(ctx, exec, opCtx, media)
		writeResponse(w, media, status, encodable(resp))
		return
	}
	if n := len(graphql.CollectFields(opCtx, opCtx.Operation.SelectionSet, []string{"Mutation"})); n != 1 {
		writeRequestError(w, media, string(models.BadUserInput),
			fmt.Sprintf("an Idempotency-Key covers one mutation, and this request has %d mutation fields: send each in a request of its own", n))
		return
	}
	req := idempotency.Request{
		Caller: caller.UserID,
		Key:    key,
		// The media type too, as the same request is answered differently in each.
		Fingerprint: idempotency.Fingerprint([]byte("POST /graphql"), []byte(media), body),
	}
	err := t.keys.Do(ctx, w, req, func(ctx context.Context, w http.ResponseWriter) models.Code {
		resp, status := execute(ctx, exec, opCtx, media)
		writeResponse(w, media, status, encodable(resp))
		return outcomeCode(resp)
	})
	if err == nil {
		return
	}
	code := models.ErrorCode(err)
	switch code {
	case models.Unavailable:
		t.logger.WarnContext(ctx, "graphql: database unavailable", "err", err)
		w.Header().Set("Retry-After", retryAfter)
	case models.Internal:
		t.logger.ErrorContext(ctx, "graphql: internal error", "err", err)
	}
	writeRequestError(w, media, string(code), models.ErrorMessage(err))
}

// outcomeCode is the code of a response for idempotency.Kept: that of its first error that is
// not kept, else that of its first error, else "" for a success.
func outcomeCode(resp *graphql.Response) models.Code {
	var first models.Code
	for i, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		if !idempotency.Kept(models.Code(code)) {
			return models.Code(code)
		}
		if i == 0 {
			first = models.Code(code)
		}
	}
	return first
}
