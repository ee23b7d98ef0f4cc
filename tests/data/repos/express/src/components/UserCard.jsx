export function UserCard({ name, email }) {
  return (
    <article className="user-card">
      <h3>{name}</h3>
      <p>{email}</p>
    </article>
  );
}

export default UserCard;
