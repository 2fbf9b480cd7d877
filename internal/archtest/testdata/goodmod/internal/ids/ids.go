package ids
