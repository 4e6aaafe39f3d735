// See README: names only.
#pragma once
