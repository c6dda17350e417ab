package graph

import (
	"usergraph/graph/model"
	"usergraph/models"
)

// userUpdate translates the GraphQL input into the domain's update. A field sent as an explicit
// null is reported to the domain, which refuses it, rather than being mistaken for one left out.
func userUpdate(in model.UpdateUserInput) models.UserUpdate {
	var upd models.UserUpdate
	if v, set := in.Username.ValueOK(); set {
		if v == nil {
			upd.Nulls = append(upd.Nulls, "username")
		}
		upd.Username = v
	}
	if v, set := in.Email.ValueOK(); set {
		if v == nil {
			upd.Nulls = append(upd.Nulls, "email")
		}
		upd.Email = v
	}
	if v, _ := in.ExpectedVersion.ValueOK(); v != nil {
		version := int64(*v)
		upd.IfVersion = &version
	}
	return upd
}

// nullIfNotFound answers a query for a user that does not exist with null, as the schema promises
// for me and user, instead of an error.
func nullIfNotFound(u *models.User, err error) (*models.User, error) {
	if models.ErrorCode(err) == models.NotFound {
		return nil, nil
	}
	return u, err
}

// userConnection renders a page of users as a Relay-style connection.
func userConnection(page *models.UserPage, err error) (*model.UserConnection, error) {
	if err != nil {
		return nil, err
	}
	conn := &model.UserConnection{
		Edges:    make([]*model.UserEdge, len(page.Users)),
		PageInfo: &model.PageInfo{HasNextPage: page.HasNext},
	}
	for i, u := range page.Users {
		conn.Edges[i] = &model.UserEdge{Cursor: u.Cursor(), Node: u}
	}
	if n := len(page.Users); n > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}
