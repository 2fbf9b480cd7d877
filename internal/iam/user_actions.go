package iam

import (
	"context"
	"errors"
	"regexp"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func checkUserName(field, name string) error {
	if !userName.MatchString(name) {
		return api.InvalidValue(field, "must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
	}
	return nil
}

// UserInfo is a user as actions show it.
type UserInfo struct {
	UserId              string `json:"UserId"`
	UserName            string `json:"UserName"`
	DisplayName         string `json:"DisplayName"`
	Role                string `json:"Role"`
	Status              string `json:"Status"`
	CreatedTime         string `json:"CreatedTime"`
	PasswordChangedTime string `json:"PasswordChangedTime"`
}

func userInfo(u User) UserInfo {
	i := UserInfo{UserId: u.ID, UserName: u.Name, DisplayName: u.DisplayName, Role: u.Role, Status: u.Status,
		CreatedTime: u.CreatedAt.Format(time.RFC3339)}
	if !u.PasswordChangedAt.IsZero() {
		i.PasswordChangedTime = u.PasswordChangedAt.Format(time.RFC3339)
	}
	return i
}

// CreateUserRequest is the request of CreateUser.
type CreateUserRequest struct {
	UserName    string `json:"UserName" validate:"required,max=64"`
	DisplayName string `json:"DisplayName" validate:"max=128"`
	Password    string `json:"Password" validate:"required,max=256"`
	// Role is admin (a platform admin) or viewer (the default: no role of
	// its own; CreateProjectMember binds the user's roles per project).
	Role string `json:"Role" validate:"oneof=admin viewer"`
}

// CreateUserResponse is the response of CreateUser.
type CreateUserResponse struct {
	UserId string `json:"UserId"`
}

// DescribeUsersRequest is the request of DescribeUsers.
type DescribeUsersRequest struct {
	UserIds   []string `json:"UserIds"`
	UserNames []string `json:"UserNames"`
	Offset    int      `json:"Offset" validate:"min=0"`
	Limit     int      `json:"Limit" validate:"min=0,max=100"`
}

// DescribeUsersResponse is the response of DescribeUsers.
type DescribeUsersResponse struct {
	TotalCount int        `json:"TotalCount"`
	UserSet    []UserInfo `json:"UserSet"`
}

// ModifyUserRequest is the request of ModifyUser; absent fields stay.
type ModifyUserRequest struct {
	UserId      string  `json:"UserId" validate:"required,max=64"`
	UserName    *string `json:"UserName" validate:"max=64"`
	DisplayName *string `json:"DisplayName" validate:"max=128"`
	Role        *string `json:"Role" validate:"oneof=admin viewer"`
	// Status disables a user (ending their sessions) or enables one.
	Status *string `json:"Status" validate:"oneof=active disabled"`
}

// UserIdRequest names one user.
type UserIdRequest struct {
	UserId string `json:"UserId" validate:"required,max=64"`
}

// ResetUserPasswordRequest is the request of ResetUserPassword.
type ResetUserPasswordRequest struct {
	UserId   string `json:"UserId" validate:"required,max=64"`
	Password string `json:"Password" validate:"required,max=256"`
}

// ModifyMyPasswordRequest is the request of ModifyMyPassword.
type ModifyMyPasswordRequest struct {
	CurrentPassword string `json:"CurrentPassword" validate:"required,max=256"`
	NewPassword     string `json:"NewPassword" validate:"required,max=256"`
}

// LoginRequest is the request of Login.
type LoginRequest struct {
	UserName string `json:"UserName" validate:"required,max=64"`
	Password string `json:"Password" validate:"required,max=256"`
}

// LoginResponse is the response of Login. The session token itself goes
// only into the cookie.
type LoginResponse struct {
	UserId    string `json:"UserId"`
	UserName  string `json:"UserName"`
	Role      string `json:"Role"`
	SessionId string `json:"SessionId"`
	// CsrfToken must be sent in the X-Tianshu-CSRF header of every call
	// made with the session cookie.
	CsrfToken string `json:"CsrfToken"`
	// ExpireTime is when the session ends at the latest; it ends earlier
	// when unused for IdleTimeoutSeconds.
	ExpireTime         string `json:"ExpireTime"`
	IdleTimeoutSeconds int64  `json:"IdleTimeoutSeconds"`

	token   string
	expires time.Time
}

// StartedSession implements api.SessionStarter.
func (r *LoginResponse) StartedSession() (string, time.Time) { return r.token, r.expires }

// LogoutResponse is the response of Logout and LogoutEverywhere.
type LogoutResponse struct {
	// EndedSessions is how many sessions ended.
	EndedSessions int `json:"EndedSessions"`
}

// EndedSession implements api.SessionEnder: the caller's cookie is cleared.
func (*LogoutResponse) EndedSession() bool { return true }

// SessionIdRequest names one of the caller's sessions.
type SessionIdRequest struct {
	SessionId string `json:"SessionId" validate:"required,max=64"`
}

// MySessionInfo is one of the caller's sessions.
type MySessionInfo struct {
	SessionId    string `json:"SessionId"`
	SourceIp     string `json:"SourceIp"`
	CreatedTime  string `json:"CreatedTime"`
	LastSeenTime string `json:"LastSeenTime"`
	ExpireTime   string `json:"ExpireTime"`
	// Current marks the session of this call.
	Current bool `json:"Current"`
}

// DescribeMySessionsRequest is the request of DescribeMySessions.
type DescribeMySessionsRequest struct {
	api.Paging
}

// DescribeMySessionsResponse is the response of DescribeMySessions.
type DescribeMySessionsResponse struct {
	TotalCount int             `json:"TotalCount"`
	SessionSet []MySessionInfo `json:"SessionSet"`
}

// Empty is the request or response of actions that take or answer nothing.
type Empty struct{}

func userErr(err error, id string) error {
	switch {
	case errors.Is(err, ErrUserNotFound):
		return api.NotFound("user", id)
	case errors.Is(err, ErrUserExists):
		return api.Errorf(api.ResourceInUse, "UserName: a user with this name exists")
	}
	return err
}

// RegisterUserActions adds the user, login and session actions to reg; l
// may be nil for docs.
func RegisterUserActions(reg *api.Registry, l *Logins) {
	var users *Users
	var sessions *Sessions
	if l != nil {
		users, sessions = l.users, l.sessions
	}
	userRead, userWrite := api.Permission{Resource: "user", Access: api.Read}, api.Permission{Resource: "user", Access: api.Write}
	own := api.Permission{Resource: "session", Access: api.Write}

	api.Register(reg, api.Spec{Name: "CreateUser", Summary: "Create a user with a password that meets the policy.", Permission: userWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateUserRequest) (*CreateUserResponse, error) {
			if err := checkUserName("UserName", r.UserName); err != nil {
				return nil, err
			}
			if err := CheckPasswordPolicy("Password", r.Password, r.UserName); err != nil {
				return nil, err
			}
			role := r.Role
			if role == "" {
				role = api.RoleViewer
			}
			id, err := users.CreateWithDisplay(ctx, r.UserName, r.DisplayName, r.Password, role)
			if err != nil {
				return nil, userErr(err, "")
			}
			c.SetResource(id)
			return &CreateUserResponse{UserId: id}, nil
		})

	api.Register(reg, api.Spec{Name: "DescribeUsers", Summary: "List users, oldest first.", Permission: userRead},
		func(ctx context.Context, c *api.Caller, r *DescribeUsersRequest) (*DescribeUsersResponse, error) {
			limit := r.Limit
			if limit == 0 {
				limit = 20
			}
			us, total, err := users.List(ctx, r.UserIds, r.UserNames, nil, nil, r.Offset, limit)
			if err != nil {
				return nil, err
			}
			out := &DescribeUsersResponse{TotalCount: total, UserSet: make([]UserInfo, 0, len(us))}
			for _, u := range us {
				out.UserSet = append(out.UserSet, userInfo(u))
			}
			return out, nil
		})

	api.Register(reg, api.Spec{Name: "ModifyUser", Summary: "Rename a user, change their display name or role, or disable (ending their sessions) or enable them.",
		Permission: userWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyUserRequest) (*Empty, error) {
			c.SetResource(r.UserId)
			if r.UserName != nil {
				if err := checkUserName("UserName", *r.UserName); err != nil {
					return nil, err
				}
			}
			if r.UserId == c.UserID && r.Status != nil && *r.Status == UserDisabled {
				return nil, api.InvalidValue("Status", "you cannot disable yourself; ask another administrator")
			}
			if err := users.Modify(ctx, r.UserId, UserChange{Name: r.UserName, DisplayName: r.DisplayName, Role: r.Role, Status: r.Status}); err != nil {
				return nil, userErr(err, r.UserId)
			}
			if r.Status != nil && *r.Status == UserDisabled {
				if _, err := sessions.DeleteUser(ctx, r.UserId, ""); err != nil {
					return nil, err
				}
			}
			return &Empty{}, nil
		})

	api.Register(reg, api.Spec{Name: "DeleteUser", Summary: "Delete a user and end their sessions.", Permission: userWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *UserIdRequest) (*Empty, error) {
			c.SetResource(r.UserId)
			if r.UserId == c.UserID {
				return nil, api.InvalidValue("UserId", "you cannot delete yourself; ask another administrator")
			}
			if err := users.Delete(ctx, r.UserId); err != nil {
				return nil, userErr(err, r.UserId)
			}
			_, err := sessions.DeleteUser(ctx, r.UserId, "")
			return &Empty{}, err
		})

	api.Register(reg, api.Spec{Name: "ResetUserPassword", Summary: "Set a user's password (administrators), ending their sessions.", Permission: userWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ResetUserPasswordRequest) (*Empty, error) {
			c.SetResource(r.UserId)
			u, err := users.Get(ctx, r.UserId)
			if err != nil {
				return nil, userErr(err, r.UserId)
			}
			if err := CheckPasswordPolicy("Password", r.Password, u.Name); err != nil {
				return nil, err
			}
			if err := users.SetPassword(ctx, r.UserId, r.Password); err != nil {
				return nil, userErr(err, r.UserId)
			}
			_, err = sessions.DeleteUser(ctx, r.UserId, "")
			return &Empty{}, err
		})

	api.Register(reg, api.Spec{Name: "ModifyMyPassword", Summary: "Change your own password, giving the current one; your other sessions end.",
		Permission: own, Audit: true, Self: true},
		func(ctx context.Context, c *api.Caller, r *ModifyMyPasswordRequest) (*Empty, error) {
			c.SetResource(c.UserID)
			if err := CheckPasswordPolicy("NewPassword", r.NewPassword, c.UserName); err != nil {
				return nil, err
			}
			if _, err := l.Check(ctx, c.UserName, r.CurrentPassword, c.SourceIP); err != nil {
				if e, ok := api.AsError(err); ok && e.Code == api.AuthFailureLoginFailed {
					return nil, api.InvalidValue("CurrentPassword", "wrong")
				}
				return nil, err
			}
			if err := users.SetPassword(ctx, c.UserID, r.NewPassword); err != nil {
				return nil, err
			}
			_, err := sessions.DeleteUser(ctx, c.UserID, c.SessionID)
			return &Empty{}, err
		})

	api.Register(reg, api.Spec{Name: "Login", Summary: "Log in with a user name and password: sets the session cookie and answers the CSRF token.",
		Permission: own, Audit: true, Public: true},
		func(ctx context.Context, c *api.Caller, r *LoginRequest) (*LoginResponse, error) {
			c.UserName = r.UserName // the audit event's actor, whatever the outcome
			u, s, err := l.Login(ctx, r.UserName, r.Password, c.SourceIP)
			if err != nil {
				return nil, err
			}
			c.UserID, c.SessionID = u.ID, s.ID
			c.SetResource(s.ID)
			return &LoginResponse{UserId: u.ID, UserName: u.Name, Role: u.Role, SessionId: s.ID, CsrfToken: s.CSRFToken,
				ExpireTime: s.ExpiresAt.UTC().Format(time.RFC3339), IdleTimeoutSeconds: int64(sessions.cfg.IdleTimeout.Seconds()),
				token: s.Token, expires: s.ExpiresAt}, nil
		})

	api.Register(reg, api.Spec{Name: "Logout", Summary: "End the calling session and clear its cookie.", Permission: own, Audit: true, Self: true},
		func(ctx context.Context, c *api.Caller, r *Empty) (*LogoutResponse, error) {
			c.SetResource(c.SessionID)
			if err := sessions.Delete(ctx, c.UserID, c.SessionID); err != nil && !errors.Is(err, api.ErrSessionNotFound) {
				return nil, err
			}
			return &LogoutResponse{EndedSessions: 1}, nil
		})

	api.Register(reg, api.Spec{Name: "LogoutEverywhere", Summary: "End every session of the calling person, this one included.", Permission: own, Audit: true, Self: true},
		func(ctx context.Context, c *api.Caller, r *Empty) (*LogoutResponse, error) {
			n, err := sessions.DeleteUser(ctx, c.UserID, "")
			if err != nil {
				return nil, err
			}
			return &LogoutResponse{EndedSessions: n}, nil
		})

	api.Register(reg, api.Spec{Name: "DescribeMySessions", Summary: "List your live sessions, newest first.",
		Permission: api.Permission{Resource: "session", Access: api.Read}, Self: true},
		func(ctx context.Context, c *api.Caller, r *DescribeMySessionsRequest) (*DescribeMySessionsResponse, error) {
			off, lim := r.Page()
			ss, total, err := sessions.Page(ctx, c.UserID, off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeMySessionsResponse{TotalCount: total, SessionSet: make([]MySessionInfo, 0, len(ss))}
			for _, s := range ss {
				out.SessionSet = append(out.SessionSet, MySessionInfo{SessionId: s.ID, SourceIp: s.SourceIP,
					CreatedTime: s.Created.Format(time.RFC3339), LastSeenTime: s.LastSeen.Format(time.RFC3339),
					ExpireTime: s.ExpiresAt.Format(time.RFC3339), Current: s.ID == c.SessionID})
			}
			return out, nil
		})

	api.Register(reg, api.Spec{Name: "DeleteMySession", Summary: "End one of your sessions (e.g. one left logged in elsewhere).", Permission: own, Audit: true, Self: true},
		func(ctx context.Context, c *api.Caller, r *SessionIdRequest) (*Empty, error) {
			c.SetResource(r.SessionId)
			if err := sessions.Delete(ctx, c.UserID, r.SessionId); err != nil {
				if errors.Is(err, api.ErrSessionNotFound) {
					return nil, api.NotFound("session", r.SessionId)
				}
				return nil, err
			}
			return &Empty{}, nil
		})
}
