// See README: names only.
#pragma once
#include "gloo/context.h"
