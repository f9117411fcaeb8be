"""Work chains that drive an engine through the paper's steps (material workflow, issue 4)."""
