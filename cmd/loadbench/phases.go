package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// phase is one of the measurements: op drives it with the built-in driver, and kind names
// it to wrk.lua for wrk.
type phase struct {
	name string
	op   func(w *worker) error
	kind string // for wrk
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

// putUser is phase (b) and, with keyed, phase (d): each request with an Idempotency-Key of its
// own, as a client that sends one with every write does, so that each takes the key's full path:
// its insert, and its outcome stored in the update's transaction.
func putUser(token string, keyed bool) func(*worker) error {
	auth := "Bearer " + token
	return func(w *worker) error {
		id := w.randomID()
		name := w.nextName()
		w.prepare(http.MethodPut, "/users/"+strconv.Itoa(id), auth, `{"username":"`+name+`"}`)
		if keyed {
			w.req.Header.Set("Idempotency-Key", name)
		}
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
