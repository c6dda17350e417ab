package model

import (
	"errors"
	"io"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
)

// MarshalInt64ID renders a database key as a GraphQL ID: a decimal integer in a string.
func MarshalInt64ID(id int64) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		io.WriteString(w, strconv.Quote(strconv.FormatInt(id, 10)))
	})
}

// UnmarshalInt64ID exists because gqlgen wants a pair; IDs arrive as strings (graphql.ID), so
// that one that is not a number can simply match no user.
func UnmarshalInt64ID(v any) (int64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, errors.New("an ID must be a string")
	}
	return strconv.ParseInt(s, 10, 64)
}
