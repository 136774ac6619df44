"""Where scenes and input videos come from: synthetic renders, real images and clips, edits."""
