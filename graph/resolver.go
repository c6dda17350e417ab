// Package graph is the GraphQL edge of the service: the schema's resolvers, which call the
// operations in models, and the HTTP handler that serves them.
package graph

//go:generate go tool gqlgen generate

import "usergraph/models"

// Resolver holds the dependencies of the resolvers. NewHandler fills it in once, with what
// server.go gives it at start-up.
type Resolver struct {
	UserService *models.UserService
}
