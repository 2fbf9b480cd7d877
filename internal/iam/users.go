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
}

// NewUsers returns the user store over db.
func NewUsers(db *store.DB, now func() time.Time) *Users {
	if now == nil {
		now = time.Now
	}
	return &Users{db: db, now: now}
}

// Count returns how many users exist.
func (u *Users) Count(ctx context.Context) (int, error) {
	var n int
	err := u.db.QueryRow(ctx, "SELECT COUNT(*) FROM users").Scan(&n)
	return n, err
}

// ErrUserExists is returned by Create for a name that is taken.
var ErrUserExists = errors.New("iam: user exists")

// Create adds a user with a password and a role, returning its id.
func (u *Users) Create(ctx context.Context, name, password, role string) (string, error) {
	id := ids.New("usr")
	now := u.now().UnixMilli()
	_, err := u.db.Exec(ctx, `INSERT INTO users (id, name, password_hash, role, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'active', ?, ?)`, id, name, HashPassword(password), role, now, now)
	if u.db.IsUniqueViolation(err) {
		return "", fmt.Errorf("%w: %s", ErrUserExists, name)
	}
	if err != nil {
		return "", fmt.Errorf("iam: create user: %w", err)
	}
	return id, nil
}

// Authenticate checks a user's password and returns the user's role.
func (u *Users) Authenticate(ctx context.Context, name, password string) (role string, ok bool, err error) {
	var hash, status string
	err = u.db.QueryRow(ctx, "SELECT password_hash, role, status FROM users WHERE name = ?", name).Scan(&hash, &role, &status)
	if errors.Is(err, sql.ErrNoRows) {
		// Hash anyway so that unknown names take as long as wrong passwords.
		_, _ = CheckPassword(HashPassword("x"), password)
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	ok, err = CheckPassword(hash, password)
	return role, ok && status == "active", err
}
