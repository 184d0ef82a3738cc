package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard-chat/switchboard/config"
)

// People is how the API reads and changes people; the service
// implements it. Errors of validity name people.<id>... as the config
// file's check does.
type People interface {
	// People lists every person as the API shows it, sorted by id.
	People() []Person
	// Person is one person as the API shows it.
	Person(id string) (Person, bool)
	// PutPerson creates or replaces the person with the id.
	PutPerson(ctx context.Context, id string, in PersonInput) (created bool, err error)
	// DeletePerson removes the person.
	DeletePerson(ctx context.Context, id string) error
}

// ErrPersonNotFound is returned (wrapped) for a person there is not;
// the API answers 404.
var ErrPersonNotFound = errors.New("no such person")

// UsePeople turns on the people endpoints; before Routes.
func (s *API) UsePeople(p People) { s.people = p }

func (s *API) peopleRoutes(mux *http.ServeMux) {
	if s.people == nil {
		return
	}
	mux.Handle("GET /api/people", s.authorized(s.listPeople))
	mux.Handle("GET /api/people/{id}", s.authorized(s.getPerson))
	mux.Handle("PUT /api/people/{id}", s.authorized(s.putPerson))
	mux.Handle("DELETE /api/people/{id}", s.authorized(s.deletePerson))
}

// Person is a person as the API shows it: credentials only as "set".
type Person struct {
	ID       string                 `json:"id"`
	Name     string                 `json:"name"`
	Avatar   string                 `json:"avatar,omitempty"`
	Home     string                 `json:"home"`
	Accounts map[string]AccountView `json:"accounts"`
	// AwayAfter and AwayMessage are as in the file ("30m0s").
	AwayAfter   string `json:"away_after"`
	AwayMessage string `json:"away_message"`
	// Source is "config" for a person as the file has them, "runtime"
	// for one put through the API.
	Source string `json:"source"`
	// Notes are what the operator needs to know of valid accounts, by
	// field (config.PeopleNotes): a double_puppet Matrix account the
	// homeserver's registration does not name yet, say.
	Notes []FieldError `json:"notes,omitempty"`
}

// AccountView is an account as the API shows it: a secret that is set
// shows as "set", never its value.
type AccountView struct {
	ID           string `json:"id"`
	Password     string `json:"password,omitempty"`
	Token        string `json:"token,omitempty"`
	DoublePuppet bool   `json:"double_puppet,omitempty"`
}

// secretSet is all a secret ever shows as.
const secretSet = "set"

// PersonView is how the API shows p: the one place a person's account
// becomes a response, so no secret value gets past it.
func PersonView(id string, p *config.Person, source string, notes []*config.FieldError) Person {
	v := Person{ID: id, Name: p.Name, Avatar: p.Avatar, Home: p.Home, Accounts: map[string]AccountView{}, Source: source,
		AwayAfter: p.AwayAfter.String(), AwayMessage: p.AwayMessage}
	for _, n := range notes {
		v.Notes = append(v.Notes, FieldError{Field: n.Path, Message: n.Msg})
	}
	for network, a := range p.Accounts {
		av := AccountView{ID: a.ID, DoublePuppet: a.DoublePuppet}
		if a.Password != "" {
			av.Password = secretSet
		}
		if a.Token != "" {
			av.Token = secretSet
		}
		v.Accounts[network] = av
	}
	return v
}

// PersonInput is the body of PUT /api/people/{id}: the person as the
// config file writes them.
type PersonInput struct {
	Name     string                  `json:"name"`
	Avatar   string                  `json:"avatar"`
	Home     string                  `json:"home"`
	Accounts map[string]AccountInput `json:"accounts"`
	// AwayAfter is a duration ("30m"), AwayMessage text; "" for the
	// default.
	AwayAfter   string `json:"away_after"`
	AwayMessage string `json:"away_message"`
}

// AccountInput is an account in a PUT: a string (the id alone) or an
// object. A credential left out (nil) keeps the one the account of the
// same id on that network has; "" (or false) removes it.
type AccountInput struct {
	ID           string  `json:"id"`
	Password     *string `json:"password"`
	Token        *string `json:"token"`
	DoublePuppet *bool   `json:"double_puppet"`
}

// UnmarshalJSON takes a string as the id alone, as the config file does.
func (a *AccountInput) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		*a = AccountInput{}
		return json.Unmarshal(b, &a.ID)
	}
	type plain AccountInput
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*a = AccountInput(p)
	return nil
}

// Person is the person with id in, with credentials left out taken from
// cur (nil: none) where cur's account on that network has the same id. An
// account whose id changes starts without credentials, so a password
// never moves to an account it was not given for. A credential given as
// "set", what GET shows for one that is stored, keeps the stored one too,
// so that a client may send back what it read; "set" where none is
// stored is an error naming the field.
func (in PersonInput) Person(id string, cur *config.Person) (*config.Person, error) {
	p := &config.Person{Name: in.Name, Avatar: in.Avatar, Home: in.Home, Accounts: make(map[string]config.Account, len(in.Accounts)), AwayMessage: in.AwayMessage}
	var errs []error
	if in.AwayAfter != "" {
		d, err := time.ParseDuration(in.AwayAfter)
		if err != nil {
			errs = append(errs, &config.FieldError{Path: fmt.Sprintf("people.%s.away_after", id), Msg: fmt.Sprintf("want a duration such as 30m, got %q", in.AwayAfter)})
		}
		p.AwayAfter = d
	}
	for network, ai := range in.Accounts {
		a := config.Account{ID: ai.ID}
		if cur != nil {
			if old, ok := cur.Accounts[network]; ok && old.ID == ai.ID {
				a = old
			}
		}
		secret := func(key string, given *string, stored *string) {
			switch {
			case given == nil:
			case *given == secretSet && *stored == "":
				errs = append(errs, &config.FieldError{
					Path: fmt.Sprintf("people.%s.accounts.%s.%s", id, network, key),
					Msg:  fmt.Sprintf("%q stands for a stored %s, and this account has none: send the %s itself", secretSet, key, key),
				})
			case *given != secretSet:
				*stored = *given
			}
		}
		secret("password", ai.Password, &a.Password)
		secret("token", ai.Token, &a.Token)
		if ai.DoublePuppet != nil {
			a.DoublePuppet = *ai.DoublePuppet
		}
		p.Accounts[network] = a
	}
	return p, errors.Join(errs...)
}

func (s *API) listPeople(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"people": s.people.People()})
}

func (s *API) getPerson(w http.ResponseWriter, r *http.Request) {
	s.respondPerson(w, r.PathValue("id"), http.StatusOK)
}

func (s *API) respondPerson(w http.ResponseWriter, id string, code int) {
	p, ok := s.people.Person(id)
	if !ok {
		apiError(w, http.StatusNotFound, "id", fmt.Sprintf("no person %q", id))
		return
	}
	writeJSON(w, code, p)
}

func (s *API) putPerson(w http.ResponseWriter, r *http.Request) {
	var in PersonInput
	if !readJSON(w, r, &in) {
		return
	}
	id := r.PathValue("id")
	created, err := s.people.PutPerson(r.Context(), id, in)
	if s.personChangeFailed(w, err, id) {
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	s.respondPerson(w, id, code)
}

func (s *API) deletePerson(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.personChangeFailed(w, s.people.DeletePerson(r.Context(), id), id) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// personChangeFailed answers a failed change and reports whether it
// did. Validation errors keep the config file's paths
// (people.<id>.accounts.<network>...), as `switchboard check` names them.
func (s *API) personChangeFailed(w http.ResponseWriter, err error, id string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrPersonNotFound):
		apiError(w, http.StatusNotFound, "id", fmt.Sprintf("no person %q", id))
	default:
		fields := fieldErrors(err, "", nil)
		if len(fields) == 0 {
			s.log.Warn("provisioning API", "person", id, "err", err)
			apiError(w, http.StatusInternalServerError, "", err.Error())
			return true
		}
		badFields(w, fields)
	}
	return true
}
