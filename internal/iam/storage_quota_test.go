package iam_test

import (
	"context"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// The storage quota has a default and is set per project by a platform
// admin, like the others (issue #26, part 6).
func TestProjectStorageQuota(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	ctx := context.Background()
	p := iam.NewProjects(db, newClock().now)
	p.SetDefaultQuotas(iam.Quotas{StorageBytes: 1 << 30})
	if _, err := p.Create(ctx, "prj-a", "A", ""); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Quota(ctx, "prj-a", api.QuotaStorage); err != nil || n != 1<<30 {
		t.Fatalf("default storage quota = %d, %v", n, err)
	}
	reg := api.NewRegistry()
	iam.RegisterProjectActions(reg, p)
	root := &api.Caller{AppID: "app-root", ProjectID: "default", Role: api.RoleAdmin}
	_, err := callAction(reg, root, "ModifyProjectQuota", `{"ProjectId": "prj-a", "MaxStorageBytes": -1}`)
	wantCode(t, err, api.InvalidParameterValue, "")
	if _, err := callAction(reg, root, "ModifyProjectQuota", `{"ProjectId": "prj-a", "MaxStorageBytes": 5000000000}`); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Quota(ctx, "prj-a", api.QuotaStorage); err != nil || n != 5000000000 {
		t.Fatalf("storage quota after ModifyProjectQuota = %d, %v", n, err)
	}
	resp, err := callAction(reg, root, "DescribeProjects", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range resp.(*iam.DescribeProjectsResponse).ProjectSet {
		if pr.ProjectId == "prj-a" && pr.Quota.MaxStorageBytes != 5000000000 {
			t.Errorf("DescribeProjects storage quota = %d", pr.Quota.MaxStorageBytes)
		}
	}
}
