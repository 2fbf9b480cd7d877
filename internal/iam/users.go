package iam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Users keeps user accounts.
type Users struct {
	db  *store.DB
	now func() time.Time
	// dummy is a hash that unknown names are checked against, so that they
	// take as long as wrong passwords.
	dummy string
	// roleChanged is told when a user's account role may have changed.
	roleChanged func()
}

// OnRoleChange makes Modify call f after it wrote a user's account role,
// and Delete after it removed a user: the grants cache (Access.Changed)
// holds whether a user is a platform admin.
func (u *Users) OnRoleChange(f func()) { u.roleChanged = f }

// NewUsers returns the user store over db.
func NewUsers(db *store.DB, now func() time.Time) *Users {
	if now == nil {
		now = time.Now
	}
	return &Users{db: db, now: now, dummy: HashPassword("not a password")}
}

// User statuses.
const (
	UserActive   = "active"
	UserDisabled = "disabled"
)

// User is a user row, without its password hash.
type User struct {
	ID, Name, DisplayName, Role, Status string
	CreatedAt, UpdatedAt                time.Time
	PasswordChangedAt                   time.Time // zero: never changed since creation
}

// Count returns how many users exist.
func (u *Users) Count(ctx context.Context) (int, error) {
	var n int
	err := u.db.QueryRow(ctx, "SELECT COUNT(*) FROM users").Scan(&n)
	return n, err
}

// ErrUserExists is returned by Create for a name that is taken.
var ErrUserExists = errors.New("iam: user exists")

// ErrUserNotFound is returned for an unknown user id or name.
var ErrUserNotFound = errors.New("iam: user not found")

// Create adds a user with a password and a role, returning its id. It
// does not check the password policy: callers facing people do
// (CheckPasswordPolicy).
func (u *Users) Create(ctx context.Context, name, password, role string) (string, error) {
	return u.CreateWithDisplay(ctx, name, "", password, role)
}

// CreateWithDisplay is Create with a display name.
func (u *Users) CreateWithDisplay(ctx context.Context, name, display, password, role string) (string, error) {
	id := ids.New("usr")
	now := u.now().UnixMilli()
	_, err := u.db.Exec(ctx, `INSERT INTO users (id, name, display_name, password_hash, role, status, created_at, updated_at, password_changed_at)
		VALUES (?, ?, ?, ?, ?, 'active', ?, ?, 0)`, id, name, display, HashPassword(password), role, now, now)
	if u.db.IsUniqueViolation(err) {
		return "", fmt.Errorf("%w: %s", ErrUserExists, name)
	}
	if err != nil {
		return "", fmt.Errorf("iam: create user: %w", err)
	}
	return id, nil
}

const userColumns = "id, name, display_name, role, status, created_at, updated_at, password_changed_at"

func scanUser(s interface{ Scan(...any) error }) (User, error) {
	var x User
	var c, up, pc int64
	if err := s.Scan(&x.ID, &x.Name, &x.DisplayName, &x.Role, &x.Status, &c, &up, &pc); err != nil {
		return x, err
	}
	x.CreatedAt, x.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(up).UTC()
	if pc > 0 {
		x.PasswordChangedAt = time.UnixMilli(pc).UTC()
	}
	return x, nil
}

// Get returns the user with id.
func (u *Users) Get(ctx context.Context, id string) (User, error) {
	x, err := scanUser(u.db.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return x, fmt.Errorf("%w: %s", ErrUserNotFound, id)
	}
	return x, err
}

// List returns users matching the filters (empty: any), oldest first, and
// the total.
func (u *Users) List(ctx context.Context, userIDs, names, roles, statuses []string, offset, limit int) ([]User, int, error) {
	var w store.Where
	cond, args := w.In("id", userIDs).In("name", names).In("role", roles).In("status", statuses).SQL()
	var total int
	if err := u.db.QueryRow(ctx, "SELECT COUNT(*) FROM users"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("iam: count users: %w", err)
	}
	rows, err := u.db.Query(ctx, "SELECT "+userColumns+" FROM users"+cond+" ORDER BY created_at, id LIMIT ? OFFSET ?", append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("iam: list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		x, err := scanUser(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, x)
	}
	return out, total, rows.Err()
}

// UserChange is what Modify changes; nil fields stay.
type UserChange struct {
	Name, DisplayName, Role, Status *string
}

// Modify changes a user. Renaming to a taken name returns ErrUserExists.
func (u *Users) Modify(ctx context.Context, id string, ch UserChange) error {
	sets, args := "updated_at = ?", []any{u.now().UnixMilli()}
	for _, f := range []struct {
		col string
		v   *string
	}{{"name", ch.Name}, {"display_name", ch.DisplayName}, {"role", ch.Role}, {"status", ch.Status}} {
		if f.v != nil {
			sets += ", " + f.col + " = ?"
			args = append(args, *f.v)
		}
	}
	res, err := u.db.Exec(ctx, "UPDATE users SET "+sets+" WHERE id = ?", append(args, id)...)
	if ch.Role != nil && u.roleChanged != nil {
		u.roleChanged()
	}
	if u.db.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %s", ErrUserExists, *ch.Name)
	}
	if err != nil {
		return fmt.Errorf("iam: modify user: %w", err)
	}
	return rowAffected(res, id)
}

// SetPassword replaces a user's password hash.
func (u *Users) SetPassword(ctx context.Context, id, password string) error {
	now := u.now().UnixMilli()
	res, err := u.db.Exec(ctx, "UPDATE users SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?", HashPassword(password), now, now, id)
	if err != nil {
		return fmt.Errorf("iam: set password: %w", err)
	}
	return rowAffected(res, id)
}

// Delete removes a user.
func (u *Users) Delete(ctx context.Context, id string) error {
	res, err := u.db.Exec(ctx, "DELETE FROM users WHERE id = ?", id)
	if u.roleChanged != nil {
		u.roleChanged()
	}
	if err != nil {
		return fmt.Errorf("iam: delete user: %w", err)
	}
	return rowAffected(res, id)
}

func rowAffected(res sql.Result, id string) error {
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%w: %s", ErrUserNotFound, id)
	}
	return nil
}

// Verify checks a user's password and returns the user (the zero User for
// an unknown name). ok is false for a
// wrong password, an unknown name or a disabled user alike, and each takes
// one argon2id check, so that the answer and its timing tell nothing.
func (u *Users) Verify(ctx context.Context, name, password string) (User, bool, error) {
	var hash string
	var x User
	var c, up, pc int64
	err := u.db.QueryRow(ctx, "SELECT "+userColumns+", password_hash FROM users WHERE name = ?", name).
		Scan(&x.ID, &x.Name, &x.DisplayName, &x.Role, &x.Status, &c, &up, &pc, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		_, _ = CheckPassword(u.dummy, password)
		return User{}, false, nil
	}
	if err != nil {
		return User{}, false, err
	}
	x.CreatedAt, x.UpdatedAt = time.UnixMilli(c).UTC(), time.UnixMilli(up).UTC()
	ok, err := CheckPassword(hash, password)
	return x, ok && err == nil && x.Status == UserActive, err
}

// Authenticate checks a user's password and returns the user's role.
func (u *Users) Authenticate(ctx context.Context, name, password string) (role string, ok bool, err error) {
	x, ok, err := u.Verify(ctx, name, password)
	return x.Role, ok, err
}
