// stableqat/core/errors.hpp: how the library reports bad arguments.
//
// Every check throws std::invalid_argument with one message shape:
//   "<function>: <argument> = <value> <what is wrong>"
// so that a user can see which argument failed and with what value. The
// throwing helpers are not constexpr on purpose: reaching one while evaluating
// a constant expression is a compile-time error, which is how invalid grids and
// surrogate amplitudes are rejected in constexpr code.
#pragma once

#include <charconv>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace stableqat {

namespace detail {

/// Shortest decimal text that reads back to the same double ("nan", "inf" too).
inline std::string format_number(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

inline std::string format_number(long double value) {
  return format_number(static_cast<double>(value));
}

inline std::string format_number(float value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

template <class Integer>
  requires std::is_integral_v<Integer>
inline std::string format_number(Integer value) {
  return std::to_string(value);
}

/// Throws std::invalid_argument("<function>: <argument> = <value> <problem>").
template <class Value>
[[noreturn]] inline void throw_invalid_argument(std::string_view function, std::string_view argument,
                                                Value value, std::string_view problem) {
  std::string message;
  message.reserve(function.size() + argument.size() + problem.size() + 32);
  message.append(function).append(": ").append(argument).append(" = ");
  message.append(format_number(value)).append(" ").append(problem);
  throw std::invalid_argument(message);
}

/// Argument name with an index, e.g. indexed_name("steps", 3) == "steps[3]".
inline std::string indexed_name(std::string_view name, std::size_t index) {
  std::string text(name);
  text.append("[").append(std::to_string(index)).append("]");
  return text;
}

}  // namespace detail
}  // namespace stableqat
